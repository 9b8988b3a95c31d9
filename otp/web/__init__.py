"""Server-rendered pages for verifying a phone number: include ``otp.web.urls`` anywhere.

The pages (:mod:`otp.web.views`) call the same request flows as the API
(:mod:`otp.flows`); the verified number reaches the site's next view through
:func:`otp.web.session.pop_verified_phone`.
"""
