"""The delivery path after the commit: when each delivery is due, and its attempts.

- :mod:`~hookd.delivery.wheel`: a hierarchical timer wheel holding the near future;
- :mod:`~hookd.delivery.scheduler`: loads due-soon deliveries from the store into the wheel;
- :mod:`~hookd.delivery.dispatcher`: claims fired deliveries and runs them in per-endpoint
  lanes within every limit (:mod:`~hookd.delivery.lanes`), records each outcome;
- :mod:`~hookd.delivery.attempt`: one attempt: body format, signature, HTTP POST;
- :mod:`~hookd.delivery.client`: the HTTP client with its SSRF guard;
- :mod:`~hookd.delivery.policy`: retry policies as data and pure functions.

This ``__init__`` imports nothing, so importing a policy (as the configuration does) does not
load the dispatcher.
"""
