"""notify/delivery"""
