"""Consent: who may get which e-mail, and what mailflow forgets.

suppressions.py is the suppression list (unsubscribes, bounces); tokens.py signs the
unsubscribe links that render puts in marketing e-mails and that web and the CLI read back;
purge.py forgets personal data past an age (`mailflow purge`).
"""
