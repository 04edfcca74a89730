"""The demo's pure parts, without a server: Zipf weights, the simulated LLM's answers, the
text views, the chart (built with matplotlib; its titles, axis labels and legends are
checked, so a chart without them fails), the options, and how the CLI hands them over."""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import pytest

from fleetcache import FleetStats, ModelStats, cli
from fleetcache._admin import AdminError
from fleetcache.demo import run as demo_run
from fleetcache.demo.args import add_demo_arguments, check_args
from fleetcache.demo.chart import build_figure, draw_chart, hit_rates
from fleetcache.demo.llm import MODELS, prompt_model, prompt_text, simulated_llm, zipf_cum_weights
from fleetcache.demo.view import Sample, live_line, summary


def samples() -> list[Sample]:
    # cumulative counters: 10 requests/s, 6 of them hits after the first second
    out = [Sample(0.0, 0, 0, 0, 0, 0, 0, 0)]
    for t in range(1, 6):
        out.append(
            Sample(
                float(t), 10 * t, 4 * t, 6 * t - 6, 4 * t + 6, 0, 4 * t, 100 * t, t / 10, 5.0 * t
            )
        )
    return out


def test_zipf_weights_favour_the_first_ranks() -> None:
    w = zipf_cum_weights(100, 1.1)
    assert len(w) == 100 and w[0] == 1.0
    steps = [b - a for a, b in zip([0.0, *w], w)]
    assert steps == sorted(steps, reverse=True)  # each rank less likely than the one before


def test_simulated_llm_is_deterministic_and_reports_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("fleetcache.demo.llm.time.sleep", slept.append)
    a = simulated_llm(3, prompt_model(3), 0.1, random.Random(1))
    b = simulated_llm(3, prompt_model(3), 0.1, random.Random(2))
    assert a.content == b.content and a.usage == b.usage
    assert a.usage["total_tokens"] == a.usage["prompt_tokens"] + a.usage["completion_tokens"]
    assert len(slept) == 2 and all(0 < s < 1 for s in slept)
    assert {prompt_model(k) for k in range(6)} == set(MODELS)
    assert prompt_text(0) != prompt_text(12)


def test_hit_rates_since_start_and_per_interval() -> None:
    since, t_int, per = hit_rates(samples())
    assert since[0] == 0.0 and since[-1] == pytest.approx(100 * 24 / 50)
    assert t_int == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert per == pytest.approx([0.0, 60.0, 60.0, 60.0, 60.0])


def test_live_line_and_summary_show_the_numbers() -> None:
    s = samples()
    line = live_line(s[-1], s[-2])
    assert "requests     50" in line and "hit rate 48.0% (now  60%)" in line
    assert "30 avoided" in line
    fs = FleetStats.model_validate(
        {
            "hits": 24,
            "misses": 26,
            "size": 20,
            "tokens_saved": 500,
            "cost_saved_nanousd": 13_000_000,
            "ms_saved": 61_500,
            "input_tokens_saved": 1_200,
            "output_tokens_saved": 3_400,
        }
    )
    fs.by_model["sim-small"] = ModelStats(hits=20, misses=5, cost_saved_nanousd=4_000_000)
    fs.by_model["sim-large"] = ModelStats(hits=4, misses=21, cost_saved_nanousd=9_000_000)
    text = summary(fs, s[-1], workers=3, prompts=40, zipf=1.1, elapsed=5.0, wait_s=0.5, errors=0)
    assert "fleet hit rate                48.0%" in text
    assert "$ saved (priced at write)     $0.0130" in text
    assert "LLM time saved                61.5 s" in text
    assert "tokens saved in / out         1,200 / 3,400" in text
    models = [line.split()[0] for line in text.splitlines() if line.startswith("sim-")]
    assert models == ["sim-large", "sim-small"]  # most money saved first
    assert "LLM calls avoided             30 (60.0%)" in text
    assert "mean request latency          10.0 ms" in text
    assert "sim-small" in text


def _last(data: Any) -> float:
    return float(list(data)[-1])


def test_chart_has_titles_axis_labels_and_legends(tmp_path: Path) -> None:
    fig = build_figure(samples(), "demo: 3 workers")
    top, bottom, saved, time_axis = fig.axes
    assert fig.get_suptitle() == "demo: 3 workers"
    assert top.get_title() and bottom.get_title() and "dollars" in saved.get_title()
    assert top.get_ylabel() and bottom.get_ylabel() and saved.get_xlabel()
    assert "$" in saved.get_ylabel() and "seconds" in time_axis.get_ylabel()
    assert [_last(ln.get_ydata()) for ln in saved.get_lines()] == [0.5]
    assert [_last(ln.get_ydata()) for ln in time_axis.get_lines()] == [25.0]
    for ax in (top, bottom, saved):
        legend = ax.get_legend()
        assert legend is not None
        assert all(t.get_text() for t in legend.get_texts())
    labels = {label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]}
    assert {"requests", "LLM calls made", "LLM calls avoided", "since the start"} <= labels
    path = draw_chart(samples(), tmp_path / "c.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_of_one_sample_still_draws(tmp_path: Path) -> None:
    draw_chart(samples()[:1], tmp_path / "one.png", "t")
    assert (tmp_path / "one.png").stat().st_size > 0


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_demo_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--workers", "0"], "--workers"),
        (["--duration", "0"], "--duration"),
        (["--prompts", "0"], "--prompts"),
        (["--zipf", "-1"], "--zipf"),
        (["--latency", "61"], "--latency"),
        (["--rate", "-1"], "--rate"),
        (["--ttl", "0"], "--ttl"),
        (["--interval", "0.01"], "--interval"),
    ],
)
def test_out_of_range_options_are_usage_errors(argv: list[str], named: str) -> None:
    with pytest.raises(AdminError, match=named) as exc:
        check_args(_args(*argv))
    assert exc.value.code == 2


def test_defaults_pass_the_checks() -> None:
    check_args(_args())


def test_cli_leaves_the_demo_url_unset_so_it_can_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``fleetcache demo`` without --url must not be handed localhost:6379 as if the user had
    asked for it: unset means $REDIS_URL, else a local server, else a throwaway one."""
    seen: dict[str, Any] = {}

    def fake_run_demo(args: argparse.Namespace, *, out: Any, err: Any) -> int:
        seen["url"] = getattr(args, "url", None)
        return 0

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--chart", ""]) == 0
    assert seen == {"url": None}
    assert cli.main(["demo", "--url", "redis://127.0.0.1:1/0"]) == 0
    assert seen == {"url": "redis://127.0.0.1:1/0"}


def test_no_server_to_run_on_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from fleetcache.demo import server

    monkeypatch.setattr(server, "server_binary", lambda: None)
    with pytest.raises(AdminError, match="no server to run the demo on") as exc:
        server.choose_server(None, embedded=True, err=io.StringIO())
    assert exc.value.code == 3
