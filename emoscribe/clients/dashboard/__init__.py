"""``emoscribe dashboard``: a local web page drawing a running daemon's messages and health live.

A Starlette app relays the daemon's ZeroMQ feed to the page as server-sent events and scrapes the daemon's
Prometheus ``/metrics`` for its health; the page plots with plotly.js, served from the ``plotly`` package
installed beside it (never from a CDN). Needs the ``dashboard`` extra.
"""
