"""figures.py: pure builders, checked on small hand-made frames. Reference values for the funnel
limits come from statsmodels (Wilson interval) and scipy (exact Poisson via the gamma
distribution), not from our formulae."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.stats import gamma
from statsmodels.stats.proportion import proportion_confint

from dashboard import figures
from pipelines import methods

META = {
    "indicator_id": "four_week_wait_pct",
    "short_title": "Four-week wait",
    "unit": "%",
    "title": "Four-week wait",
}


def build(builder, *args, **kwargs) -> go.Figure:
    """A builder's figure dict loaded into go.Figure, which rejects any property plotly does not know
    (the builders skip that validation on every page view)."""
    return go.Figure(builder(*args, **kwargs))


def _rows(values, codes=None, suppressed=None, sig=None, **extra):
    n = len(values)
    v = pd.Series(values, dtype="float64")
    return pd.DataFrame({
        "indicator_id": "four_week_wait_pct",
        "period_end": pd.date_range("2026-01-31", periods=n, freq="ME"),
        "geography_code": codes or [f"U1000{i}" for i in range(n)],
        "breakdown": "all", "breakdown_value": "all",
        "numerator": v * 2, "denominator": 200.0, "value": v, "lower_95": v - 5, "upper_95": v + 4,
        "suppressed": suppressed or [None] * n, "significance_95": sig or ["similar"] * n,
        "benchmark_value": 50.0, **extra,
    })  # fmt: skip


def test_area_bars_sorted_with_intervals_and_words_not_only_colour():
    df = _rows([60.0, 40.0, None], sig=["better", "worse", None], suppressed=[None, None, "primary"])
    fig = build(figures.area_bars, df, META, {"U10000": "North PCN"}, "Four-week wait by PCN")
    bars, hidden = fig.data[0], fig.data[1]
    assert list(bars.x) == [40.0, 60.0]  # ascending, so the largest is at the top
    assert list(bars.error_x.array) == [4.0, 4.0] and list(bars.error_x.arrayminus) == [5.0, 5.0]
    assert list(bars.text) == ["▼ Worse", "▲ Better"]
    assert fig.layout.xaxis.title.text == "Four-week wait (%)"
    assert fig.layout.title.text == "Four-week wait by PCN"
    assert "North PCN" in list(bars.y)
    assert "fewer than 5" in hidden.hovertext[0] and hidden.x[0] == 0


def test_trend_leaves_gaps_with_the_reason_in_the_hover():
    df = _rows([50.0, None, 55.0], suppressed=[None, "secondary", None])
    fig = build(figures.trend, df, {"four_week_wait_pct": META}, "indicator_id", "Trend")
    line = [t for t in fig.data if t.mode == "lines+markers"][0]
    assert line.connectgaps is False and math.isnan(line.y[1])
    assert any("another suppressed figure" in (a.hovertext or "") for a in fig.layout.annotations)
    band = [t for t in fig.data if t.fill == "toself"][0]
    assert len(band.x) == 4  # two shown months, up and back


def test_trend_series_differ_by_marker_shape_as_well_as_colour():
    a = _rows([50.0, 52.0]).assign(breakdown="age_band", breakdown_value="18-25")
    b = _rows([40.0, 42.0]).assign(breakdown="age_band", breakdown_value="65+")
    fig = build(
        figures.trend, pd.concat([a, b]), {"four_week_wait_pct": META}, "breakdown_value", "T", "age_band"
    )
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert lines[0].marker.symbol != lines[1].marker.symbol and lines[0].line.color != lines[1].line.color


@pytest.mark.parametrize("x, n", [(50, 100), (12, 40), (190, 200)])
def test_funnel_limits_for_percentages_match_wilson(x, n):
    lo, hi = figures.funnel_limits(100 * x / n, np.array([n]), "%", figures.Z95)
    ref_lo, ref_hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert lo[0] == pytest.approx(100 * ref_lo, rel=1e-5) and hi[0] == pytest.approx(100 * ref_hi, rel=1e-5)


def test_funnel_limits_for_rates_match_exact_poisson():
    n, rate = np.array([5000.0]), 40.0  # per 10,000 -> expected count 20
    lo, hi = figures.funnel_limits(rate, n, "per 10,000", figures.Z998)
    a = 0.002
    assert lo[0] == pytest.approx(gamma.ppf(a / 2, 20) / 5000 * 10_000, rel=1e-4)
    assert hi[0] == pytest.approx(gamma.ppf(1 - a / 2, 21) / 5000 * 10_000, rel=1e-4)


def test_slope_chart_line_follows_sii_and_rii():
    q = _rows([30.0, 35.0, 40.0, 45.0, 50.0]).assign(breakdown="imd_quintile", breakdown_value=list("12345"))
    ineq = pd.DataFrame({"measure": ["sii", "rii"], "value": [10.0, 1.5]})
    fig = build(figures.slope_chart, q, ineq, META, "Slope")
    line = fig.data[1]
    # RII = (Y0 + SII) / Y0 with SII 10 and RII 1.5 -> Y0 = 20, so the line runs 20 -> 30
    assert list(line.x) == [0, 1] and list(line.y) == pytest.approx([20.0, 30.0])
    assert list(fig.data[0].x) == [0.1, 0.3, 0.5, 0.7, 0.9]


def test_slope_chart_draws_the_sii_line_when_there_is_no_rii():
    # Quintiles 0, 2, 20, 30, 40 with denominators 100, 100, 100, 100, 400: the pipeline's fit
    # (methods.sii, checked against PHE's phe_sii in tests/pipelines) puts the most deprived end below
    # zero, so it publishes an SII and no RII. The chart must still draw that fitted line.
    values, dens = [0.0, 2.0, 20.0, 30.0, 40.0], [100.0, 100, 100, 100, 400]
    q = _rows(values).assign(breakdown="imd_quintile", breakdown_value=list("12345"), denominator=dens)
    fit = methods.sii(
        q.assign(population=q["denominator"]), ["indicator_id"], quantile="breakdown_value"
    ).iloc[0]
    assert fit["intercept"] < 0 and np.isnan(fit["rii"])
    ineq = pd.DataFrame({"measure": ["sii", "rii"], "value": [fit["sii"], np.nan]})
    fig = build(figures.slope_chart, q, ineq, META, "Slope")
    line = fig.data[1]
    assert list(line.x) == [0, 1]
    assert list(line.y) == pytest.approx([fit["intercept"], fit["intercept"] + fit["sii"]])
    assert "no RII" in line.hovertext
    # the points sit at the ranks the fit used: share before + half own share of 800
    assert list(fig.data[0].x) == pytest.approx([1 / 16, 3 / 16, 5 / 16, 7 / 16, 3 / 4])
    assert "share of the denominator" in fig.layout.xaxis.title.text


def test_group_bars_follow_the_spec_order_and_label_the_reference():
    rows = _rows([50.0, 40.0, 45.0, 60.0]).assign(
        breakdown=["all", "age_band", "age_band", "age_band"],
        breakdown_value=["all", "65+", "18-25", "26-64"],
    )
    fig = build(figures.group_bars, rows, META, "age_band", "26-64", "Groups")
    assert list(fig.data[0].x) == ["18-25", "26-64 (reference)", "65+"]
    assert any("Overall 50.0%" in (a.text or "") for a in fig.layout.annotations)


def test_wait_bands_highlight_the_longest_waits_without_relying_on_colour():
    bands = list(figures.WAIT_BANDS)
    df = _rows([10.0, 20.0, 30.0, 40.0]).assign(breakdown="wait_band", breakdown_value=bands)
    fig = build(figures.wait_bands, df, META, "Waiting list")
    assert [t.name for t in fig.data][-1] == "52+ weeks (longest waits)"
    assert fig.data[-1].marker.pattern.shape == "x" and fig.layout.barmode == "stack"


def test_fmt_and_suppression_reasons_use_the_spec_wording():
    assert figures.fmt(float("nan"), "%") == "*"
    assert figures.fmt(12.345, "%") == "12.3%"
    assert figures.fmt(1234.0, "count") == "1,234"
    assert figures.reason("primary") == "fewer than 5 — suppressed to protect confidentiality"
    assert figures.reason("secondary") == "suppressed to prevent calculation of another suppressed figure"


def test_spine_model_has_value_and_significance_per_indicator():
    df = _rows([61.26, None], codes=["U1", "U2"], suppressed=[None, "primary"], sig=["worse", None])
    model = figures.spine(df, {"four_week_wait_pct": META}, {"U1": "One"})
    assert (
        model.loc[0, "four_week_wait_pct"] == "61.3%" and model.loc[0, "four_week_wait_pct__sig"] == "worse"
    )
    assert (
        model.loc[1, "four_week_wait_pct"] == "*" and model.loc[1, "four_week_wait_pct__sig"] == "suppressed"
    )


def test_trend_months_are_labelled_as_the_month_they_end():
    """A month end drawn on a date axis is ticked as the following month; labels must say the month itself."""
    fig = build(figures.trend, _rows([50.0, 52.0]), {"four_week_wait_pct": META}, "indicator_id", "T")
    line = [t for t in fig.data if t.mode == "lines+markers"][0]
    assert list(line.x) == ["Jan 2026", "Feb 2026"]
    assert list(fig.layout.xaxis.categoryarray) == ["Jan 2026", "Feb 2026"]


def test_trend_of_several_indicators_titles_the_axis_by_unit():
    other = dict(META, indicator_id="dna_rate_pct", short_title="DNA rate")
    df = pd.concat([_rows([50.0]), _rows([10.0]).assign(indicator_id="dna_rate_pct")])
    fig = build(figures.trend, df, {"four_week_wait_pct": META, "dna_rate_pct": other}, "indicator_id", "T")
    assert fig.layout.yaxis.title.text == "Percentage (%)"


def test_every_builder_makes_a_valid_figure_with_the_default_template():
    bands = list(figures.WAIT_BANDS)
    rows = _rows([50.0, 40.0, 45.0, 60.0])
    gaps = pd.DataFrame({
        "indicator_id": "four_week_wait_pct", "period_end": pd.date_range("2026-01-31", periods=2, freq="ME"),
        "measure": "gap_abs", "group_value": "Asian", "value": [3.0, None], "lower_95": [1.0, None],
        "upper_95": [5.0, None], "suppressed": [None, "primary"],
    })  # fmt: skip
    made = [
        figures.funnel(rows, META, {}, "Funnel"),
        figures.gap_trend(gaps, META, "ethnicity_group", "Gap"),
        figures.wait_bands(rows.assign(breakdown="wait_band", breakdown_value=bands), META, "Bands"),
        figures.sparkline(rows),
    ]
    for fig in made:
        assert set(fig) == {"data", "layout"} and isinstance(fig["layout"], dict)
        validated = go.Figure(fig)
        assert validated.layout.template.layout.hovermode == go.Figure().layout.template.layout.hovermode
    funnel = go.Figure(made[0])
    assert [s.y0 for s in funnel.layout.shapes] == [funnel.layout.annotations[0].y]  # the pooled line
    assert go.Figure(made[1]).layout.shapes[0].y0 == 0  # the no-gap line
