"""notify/rules"""
