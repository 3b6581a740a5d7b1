"""Offline synth: a layer's real ``__main__.py`` under Pulumi's mock runtime, to synth JSON.

The CDK ``synth`` of this repo: deterministic, offline, and the backbone of the tests and of the
policy engine. See :mod:`shared.synth.engine` for the runner and :mod:`shared.synth.mocks` for the
answers it gives in place of AWS.
"""
