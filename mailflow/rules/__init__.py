"""Rules: from the store and a moment in time, which e-mails are due, and which are not and why."""
