"""The README's "Contracts between layers" and "Real runs" quote the error a consumer meets where its upstream stack
lacks an output: an operator greps a failed run's `error:` line for it, so the quote must be what the code says."""

from __future__ import annotations

import re
from types import SimpleNamespace

from shared.contracts import CONTRACTS, Upstream
from tests.readme_helpers import readme_rendered

#: as Markdown renders it: a code span wrapped over two lines reads with one space
README = readme_rendered()


def _message(consumer: str, layer: str, name: str, outputs: dict[str, object]) -> str:
    """What :meth:`Upstream._missing` says, with the README's placeholders, without a Pulumi runtime (the method reads
    only these attributes) and without the backticks a README code span cannot hold."""
    upstream = SimpleNamespace(consumer=consumer, layer=layer, env="<env>", stack=f"<org>/{layer}/<env>",
                               model=CONTRACTS[layer])
    return Upstream._missing(upstream, name, outputs).replace("`", "")  # type: ignore[arg-type]


def test_the_quoted_missing_output_error_is_the_codes() -> None:
    quoted = re.search(r"`(layer 'compute' reads broker\.alarm_topic_arn, which stack [^`]*)`", README)
    assert quoted is not None, "the README no longer quotes the missing-output error"
    assert "alarm_topic_arn" in CONTRACTS["broker"].model_fields
    assert _message("compute", "broker", "alarm_topic_arn", {"broker_id": "b-1"}).startswith(quoted.group(1))


def test_the_quoted_never_deployed_error_is_the_codes() -> None:
    quoted = re.search(r"`\.\.\. (but stack <org>/network/<env> has no outputs: [^`]*?) \.\.\.`", README)
    assert quoted is not None, "the README no longer quotes the never-deployed error"
    assert quoted.group(1) in _message("discovery", "network", "vpc_id", {})
