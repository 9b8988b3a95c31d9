"""Checks of what a client typed, before anything else sees it: phone numbers, PINs, purposes and channels."""
