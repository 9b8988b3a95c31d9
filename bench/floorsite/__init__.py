"""The framework floor of ``bench/load.py --floor``: what serving the two endpoints costs before any OTP work.

Three servers answer ``POST /send-otp`` and ``POST /verify-otp`` with the
app's success bodies and do nothing else, under the same gunicorn
configuration as the site:

- ``bare``: a WSGI callable (gunicorn alone);
- ``django``: a plain Django view behind the site's settings and middleware;
- ``drf``: a DRF ``APIView`` there, parsing the JSON body as the app does.

The app's CPU per flow minus the ``drf`` floor's is the app's own work
(limits, SQL, Redis, the Infobip calls, logging); the floor is what any app on
this stack pays first.
"""
