"""Delivery: a run's decided messages over their transports, each outcome recorded once.

send.py is `mailflow send` (plan, record, deliver); connections.py the worker of one SMTP
connection; transports.py the `file` transport and the Transport protocol, smtp.py the SMTP
one; lock.py one run at a time; run.py `mailflow run` (import, then send); attention.py the
messages that wait for a human (`resend`, `dismiss`).
"""
