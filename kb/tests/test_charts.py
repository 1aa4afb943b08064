"""The desk's SVG charts: accessible structure, series told apart without colour, edge cases, escaping."""

from bs4 import BeautifulSoup

from kb.desk.charts import Series, line_chart, sparkline, stacked_bars

HOSTILE = '<script>alert(1)</script>"&'


def svg(markup) -> BeautifulSoup:
    return BeautifulSoup(str(markup), "html.parser").svg


def test_line_chart_is_a_named_image_with_one_styled_line_per_series():
    chart = svg(line_chart("act", "Per day", "Two series.", ["11-01", "11-02", "11-03"],
                           [Series("Searches", [1, 5, 2]), Series("Guided", [0, 2, 7])]))
    assert chart["role"] == "img"
    assert chart["aria-labelledby"] == "act-title act-desc"
    assert chart.find("title", id="act-title").get_text() == "Per day"
    assert chart.find("desc", id="act-desc").get_text() == "Two series."
    lines = chart.find_all("polyline")
    assert len(lines) == 2
    assert [len(line["points"].split()) for line in lines] == [3, 3]
    # Not colour alone: the lines differ in dash pattern and in marker shape, and each is named.
    assert lines[0].get("stroke-dasharray") != lines[1].get("stroke-dasharray")
    assert len(chart.find_all("circle")) >= 3 and len(chart.find_all("rect")) >= 3
    labels = [text.get_text() for text in chart.find_all("text", class_="chart-label")]
    assert labels == ["Searches", "Guided"] or labels == ["Guided", "Searches"]
    ticks = [text.get_text() for text in chart.find_all("text", class_="chart-tick")]
    assert "10" in ticks  # the axis top: 7 rounded up
    assert {"11-01", "11-03"} <= set(ticks)


def test_a_chart_with_no_data_says_so():
    for labels, series in [([], []), (["11-01", "11-02"], [Series("Searches", [0, 0])])]:
        chart = svg(line_chart("empty", "Per day", "Nothing.", labels, series))
        assert chart.find("text", class_="chart-empty").get_text() == "No data in this period"
        assert chart.desc.get_text().endswith("No data in this period.")
    bars = svg(stacked_bars("empty", "Per week", "Nothing.", ["11-02"], [Series("Fixed", [0])]))
    assert bars.find("text", class_="chart-empty")
    assert not [rect for rect in bars.find_all("rect") if rect.title]  # no bar, only the legend's swatch


def test_a_single_point_is_drawn_inside_the_plot():
    chart = svg(line_chart("one", "Per day", "One day.", ["11-01"], [Series("Searches", [4])]))
    (line,) = chart.find_all("polyline")
    x, y = (float(n) for n in line["points"].split(","))
    assert 0 < x < 640 and 0 < y < 240
    assert chart.find("circle", attrs={"cx": f"{x:.1f}"})  # its marker, as a lone point draws no line
    assert not chart.find("text", class_="chart-empty")


def test_stacked_bars_fill_each_series_with_its_own_pattern_and_name_it_in_a_legend():
    chart = svg(stacked_bars("out", "Outcomes", "Per week.", ["11-02", "11-09"],
                             [Series("Fixed", [3, 0]), Series("Escalated", [1, 2]), Series("Abandoned", [0, 0])]))
    patterns = [pattern["id"] for pattern in chart.find_all("pattern")]
    assert patterns == ["out-solid", "out-hatch", "out-dots"]
    bars = [rect for rect in chart.find_all("rect") if rect.title]
    assert [rect.title.get_text() for rect in bars] == ["11-02: Fixed 3", "11-02: Escalated 1", "11-09: Escalated 2"]
    assert bars[0]["fill"] != bars[1]["fill"]
    legend = [text.get_text() for text in chart.find_all("text", class_="chart-label")]
    assert legend == ["Fixed (3)", "Escalated (3)", "Abandoned (0)"]


def test_text_in_charts_is_escaped():
    markup = str(line_chart("x", HOSTILE, HOSTILE, [HOSTILE], [Series(HOSTILE, [1])]))
    markup += str(stacked_bars("y", HOSTILE, HOSTILE, [HOSTILE], [Series(HOSTILE, [1])]))
    markup += str(sparkline(HOSTILE, [1, 2]))
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup


def test_sparkline_is_a_titled_image_and_copes_with_no_values():
    line = svg(sparkline("AccessDenied: 6 in 3 days", [1, 0, 5]))
    assert line["role"] == "img" and line.title.get_text() == "AccessDenied: 6 in 3 days"
    assert len(line.polyline["points"].split()) == 3
    empty = svg(sparkline("Nothing", []))
    assert empty.title.get_text() == "Nothing" and empty.polyline is None
    flat = svg(sparkline("Zeros", [0, 0]))
    assert flat.polyline is not None
