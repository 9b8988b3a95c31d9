"""Who may get a code, and how often.

* :mod:`~otp.limits.phone_state`: per phone (cooldown, daily cap, throttle hold, lockout).
* :mod:`~otp.limits.counters`: per prefix, per country, and the site's send budget.
* :mod:`~otp.limits.ip`: per client IP, in the shared cache; :mod:`~otp.limits.client_ip` finds that IP.
* :mod:`~otp.limits.destinations`: which countries and number types may get a code.
* :mod:`~otp.limits.challenge`: the site's own check (a CAPTCHA) before a send.
* :mod:`~otp.limits.conversion`: the sent-to-verified report that shows pumping.
"""
