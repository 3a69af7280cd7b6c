"""Campaigns: multi-step sequences of templated emails to many contacts, sent through the outbox
within each mailbox's rules, stopping on reply, bounce or unsubscribe.

One feature, one place: ``models`` (Campaign, CampaignStep, StepVariant, Enrolment,
CampaignMessage), ``services`` (writes: build, enrol, start/pause/stop, the scheduler),
``selectors`` (reads: lists, funnel, chart series), ``forms``, ``views``, ``urls``, ``tasks``.
"""
