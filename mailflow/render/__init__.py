"""Rendering: one e-mail from a rule and the rows it is about, to the bytes that are sent.

templates.py (Jinja, links) → inline.py (CSS) → mime.py (the message); compose.py ties them
for one decision; context.py and filters.py are what a template sees; workers.py renders a
big batch ahead in forked processes; samples.py and preview.py serve `preview` and `check`.
"""
