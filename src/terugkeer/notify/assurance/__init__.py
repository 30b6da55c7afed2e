"""notify/assurance"""
