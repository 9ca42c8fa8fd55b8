//! The report's charts as inline SVG, drawn with `plotters`' SVG backend:
//! bars over settlement dates (stacked or side by side), lines over
//! settlement dates, and horizontal bars by label.
//!
//! It owns the drawing: sizes, colours, axes and their tick labels. It must
//! not compute money and does no I/O. Values arrive as exact integers (fen
//! or counts) and the axes are integer axes: `plotters` turns those
//! integers into pixel positions itself, which is the only place where
//! a figure becomes a floating-point number, and only to be drawn. Every
//! tick label is an integer tick value written by `crate::money` (amounts)
//! or as an integer (counts), so no text on a chart comes from floating
//! point. The same figures give the same bytes: nothing here reads a clock,
//! a locale or a font file (the browser lays out the SVG's text).

use plotters::coord::Shift;
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordi64, RangedCoordu32};
use plotters::prelude::*;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::money;

/// The width and height of a chart's SVG canvas (its `viewBox`); the page
/// scales it to the column's width.
const WIDTH_PX: u32 = 1000;
const HEIGHT_PX: u32 = 300;
/// The height of a horizontal bar chart grows with its bars, up to this.
const HBAR_HEIGHT_PX_MAX: u32 = 900;
/// Date labels on the x axis at most: with more dates, every k-th date.
const X_LABELS_MAX: usize = 14;
/// Series drawn at most in one chart (the caller folds the rest).
pub const SERIES_MAX: usize = 8;

const FONT: &str = "sans-serif";
const FONT_SIZE: i32 = 13;
const AXIS_COLOUR: RGBColor = RGBColor(0x5d, 0x66, 0x77);
const GRID_COLOUR: RGBColor = RGBColor(0xe6, 0xe9, 0xee);

/// What a chart's values count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Amounts in fen, labelled in CNY.
    Fen,
    /// Plain counts.
    Count,
}

/// Colours of the series, in order; shared with the page's legends.
pub const PALETTE: [(u8, u8, u8); SERIES_MAX] = [
    (0x0b, 0x5c, 0xad),
    (0xe0, 0x8a, 0x1e),
    (0x1b, 0x8a, 0x5a),
    (0xb3, 0x26, 0x1e),
    (0x7a, 0x4f, 0xb0),
    (0x1f, 0x9e, 0xb3),
    (0x8c, 0x6d, 0x46),
    (0x8a, 0x93, 0xa3),
];

/// A colour of `PALETTE` as CSS (`#0b5cad`), for the page's legend.
pub fn css_colour(index: usize) -> String {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn colour(index: usize) -> RGBColor {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    RGBColor(r, g, b)
}

/// How bars of several series share a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// On top of each other (positive parts up, negative parts down).
    Stacked,
    /// Side by side.
    Grouped,
}

/// The SVG as an element of an HTML page: without its `xmlns` attribute,
/// which HTML does not need (its parser puts `<svg>` into the SVG namespace
/// itself) and which is the one URL the backend writes: the page names
/// none, so that nothing on it could look like something to fetch.
fn inline(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn drawing_error(e: impl std::fmt::Display) -> Error {
    Error::io("drawing a chart", std::io::Error::other(e.to_string()))
}

/// A drawing coordinate. Figures beyond `i64` (far beyond any real run:
/// 9.2 × 10^16 fen) are clamped, which moves a bar's end, never a printed
/// figure.
fn coordinate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// A tick label: an amount tick in CNY with thousands separators, without
/// `.00` on whole yuan (`25,000`, `0.50`); a count as an integer.
pub fn tick_text(value: i64, unit: Unit) -> String {
    match unit {
        Unit::Fen => {
            let text = money::format_fen_grouped(i128::from(value));
            match text.strip_suffix(".00") {
                Some(whole) => whole.to_string(),
                None => text,
            }
        }
        Unit::Count => value.to_string(),
    }
}

/// The y range: zero included, with a tenth of headroom above (and below
/// when there are negative values; at least one unit, so that a count of
/// 1 does not touch the frame), never empty.
fn value_range(low: i128, high: i128, unit: Unit) -> (i64, i64) {
    let (low, high) = (coordinate(low.min(0)), coordinate(high.max(0)));
    if low == 0 && high == 0 {
        return (0, if unit == Unit::Fen { 100 } else { 1 });
    }
    let below = if low < 0 { (low / 10).min(-1) } else { 0 };
    let above = if high > 0 { (high / 10).max(1) } else { 1 };
    (low.saturating_add(below), high.saturating_add(above))
}

/// Room on the left for the longest tick label of the range.
fn label_area_px(low: i64, high: i64, unit: Unit) -> u32 {
    let widest = tick_text(low, unit).len().max(tick_text(high, unit).len()) as u32;
    widest * 8 + 16
}

/// The date under a bar: `MM-DD` (the page's header gives the years).
fn date_label(day: Day) -> String {
    let text = calendar::format_date(day);
    text.get(5..).unwrap_or(&text).to_string()
}

/// One segment per date (or label): a discrete range includes its end.
fn segments(count: u32) -> SegmentedCoord<RangedCoordu32> {
    (0..count.saturating_sub(1)).into_segmented()
}

/// A chart over settlement dates: date segments across, an integer axis up.
type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordu32>, RangedCoordi64>>;

/// Every k-th date gets a label, so that at most `X_LABELS_MAX` do.
fn label_step(dates: usize) -> usize {
    dates.div_ceil(X_LABELS_MAX).max(1)
}

/// A chart with the settlement dates `days` across (one segment each,
/// every k-th labelled) and `low..high` up, its axes and grid drawn.
fn time_axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    days: &[Day],
    (low, high): (i64, i64),
    unit: Unit,
) -> Result<TimeChart<'a, 'b>> {
    let step = label_step(days.len());
    let mut chart = ChartBuilder::on(root)
        .margin_top(12)
        .margin_right(16)
        .x_label_area_size(26)
        .y_label_area_size(label_area_px(low, high, unit))
        .build_cartesian_2d(segments(days.len() as u32), low..high)
        .map_err(drawing_error)?;
    let date_text = |value: &SegmentValue<u32>| match value {
        SegmentValue::CenterOf(k) if (*k as usize).is_multiple_of(step) => days
            .get(*k as usize)
            .map(|day| date_label(*day))
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(days.len())
        .x_label_formatter(&date_text)
        .y_labels(6)
        .y_label_formatter(&|v: &i64| tick_text(*v, unit))
        .label_style((FONT, FONT_SIZE).into_font().color(&AXIS_COLOUR))
        .axis_style(AXIS_COLOUR)
        .bold_line_style(GRID_COLOUR)
        .light_line_style(WHITE)
        .draw()
        .map_err(drawing_error)?;
    Ok(chart)
}

/// Bars over the settlement dates `days`, one colour per series (in
/// `PALETTE` order).
pub fn bars_over_time(
    days: &[Day],
    series: &[&[i128]],
    layout: Layout,
    unit: Unit,
) -> Result<String> {
    let count = days.len() as u32;
    let (mut low, mut high) = (0i128, 0i128);
    for k in 0..days.len() {
        let values = series.iter().map(|s| s[k]);
        match layout {
            Layout::Stacked => {
                high = high.max(values.clone().filter(|v| *v > 0).sum());
                low = low.min(values.filter(|v| *v < 0).sum());
            }
            Layout::Grouped => {
                for v in values {
                    high = high.max(v);
                    low = low.min(v);
                }
            }
        }
    }
    let (low, high) = value_range(low, high, unit);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let mut chart = time_axes(&root, days, (low, high), unit)?;
        // The width of one date's slot in pixels, to place grouped bars
        // inside it by pixel margins (integer arithmetic).
        let (plot_width_px, _) = chart.plotting_area().dim_in_pixel();
        let slot_px = plot_width_px / count.max(1);
        let gap_px = (slot_px / 6).max(1);
        let bar_px = match layout {
            Layout::Stacked => 0,
            Layout::Grouped => {
                (slot_px.saturating_sub(2 * gap_px) / series.len().max(1) as u32).max(1)
            }
        };
        let mut bars = Vec::new();
        for k in 0..days.len() {
            let (mut up, mut down) = (0i128, 0i128);
            for (j, s) in series.iter().enumerate() {
                let value = s[k];
                if value == 0 {
                    continue;
                }
                let (from, to) = match layout {
                    Layout::Stacked if value > 0 => {
                        up += value;
                        (up - value, up)
                    }
                    Layout::Stacked => {
                        down += value;
                        (down - value, down)
                    }
                    Layout::Grouped => (0, value),
                };
                let x = k as u32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(x), coordinate(from)),
                        (SegmentValue::Exact(x + 1), coordinate(to)),
                    ],
                    colour(j).filled(),
                );
                match layout {
                    Layout::Stacked => bar.set_margin(0, 0, gap_px, gap_px),
                    Layout::Grouped => {
                        let before = gap_px + j as u32 * bar_px;
                        let after = slot_px.saturating_sub(before + bar_px);
                        bar.set_margin(0, 0, before, after)
                    }
                };
                bars.push(bar);
            }
        }
        chart.draw_series(bars).map_err(drawing_error)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(inline(svg))
}

/// Lines over the settlement dates `days`, one colour per series, each
/// date a point at the centre of its slot.
pub fn lines_over_time(days: &[Day], series: &[&[i128]], unit: Unit) -> Result<String> {
    let values = series.iter().flat_map(|s| s.iter().copied());
    let (low, high) = value_range(
        values.clone().min().unwrap_or(0),
        values.max().unwrap_or(0),
        unit,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let mut chart = time_axes(&root, days, (low, high), unit)?;
        for (j, s) in series.iter().enumerate() {
            let points: Vec<_> = s
                .iter()
                .enumerate()
                .map(|(k, v)| (SegmentValue::CenterOf(k as u32), coordinate(*v)))
                .collect();
            let style = colour(j).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().cloned(), style))
                .map_err(drawing_error)?;
            // A dot per date, so that a single date still shows.
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|point| Circle::new(point.clone(), 3, colour(j).filled())),
                )
                .map_err(drawing_error)?;
        }
        root.present().map_err(drawing_error)?;
    }
    Ok(inline(svg))
}

/// Horizontal bars, one per label, the first at the top, in the first
/// colour of `PALETTE`.
pub fn bars_by_label(labels: &[String], values: &[i128], unit: Unit) -> Result<String> {
    let count = labels.len() as u32;
    let (low, high) = value_range(
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
        unit,
    );
    let height_px = (60 + 30 * count).clamp(120, HBAR_HEIGHT_PX_MAX);
    let widest = labels.iter().map(String::len).max().unwrap_or(0) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, height_px)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(8)
            .margin_right(24)
            .x_label_area_size(26)
            .y_label_area_size(widest * 8 + 20)
            .build_cartesian_2d(low..high, segments(count))
            .map_err(drawing_error)?;
        // Segments count upwards; the first label is drawn at the top.
        let label_text = |value: &SegmentValue<u32>| match value {
            SegmentValue::CenterOf(k) if *k < count => labels[(count - 1 - *k) as usize].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(labels.len())
            .y_label_formatter(&label_text)
            .x_labels(6)
            .x_label_formatter(&|v: &i64| tick_text(*v, unit))
            .label_style((FONT, FONT_SIZE).into_font().color(&AXIS_COLOUR))
            .axis_style(AXIS_COLOUR)
            .bold_line_style(GRID_COLOUR)
            .light_line_style(WHITE)
            .draw()
            .map_err(drawing_error)?;
        let bars = values.iter().enumerate().map(|(k, value)| {
            let y = count - 1 - k as u32;
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(y)),
                    (coordinate(*value), SegmentValue::Exact(y + 1)),
                ],
                colour(0).filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        });
        chart.draw_series(bars).map_err(drawing_error)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(inline(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_exact_text() {
        assert_eq!(tick_text(2_500_000, Unit::Fen), "25,000");
        assert_eq!(tick_text(50, Unit::Fen), "0.50");
        assert_eq!(tick_text(-120_000, Unit::Fen), "-1,200");
        assert_eq!(tick_text(0, Unit::Fen), "0");
        assert_eq!(tick_text(12, Unit::Count), "12");
    }

    #[test]
    fn ranges_hold_zero_and_are_never_empty() {
        assert_eq!(value_range(0, 0, Unit::Fen), (0, 100));
        assert_eq!(value_range(0, 0, Unit::Count), (0, 1));
        assert_eq!(value_range(5, 1_000, Unit::Fen), (0, 1_100));
        assert_eq!(value_range(0, 1, Unit::Count), (0, 2));
        assert_eq!(value_range(-5, 0, Unit::Fen), (-6, 1));
        assert_eq!(value_range(-200, 1_000, Unit::Fen), (-220, 1_100));
        assert_eq!(coordinate(i128::MAX), i64::MAX);
        assert_eq!(coordinate(i128::MIN), i64::MIN);
    }

    #[test]
    fn labels_thin_out_on_long_runs() {
        assert_eq!(label_step(1), 1);
        assert_eq!(label_step(14), 1);
        assert_eq!(label_step(15), 2);
        assert_eq!(label_step(180), 13);
    }

    #[test]
    fn charts_are_svg_and_the_same_bytes_twice() {
        let days: Vec<Day> = (0..3)
            .map(|k| calendar::day_from_civil(2026, 11, 2) + k)
            .collect();
        let a = [100, 0, -50];
        let b = [300, 200, 100];
        let series: [&[i128]; 2] = [&a, &b];
        for layout in [Layout::Stacked, Layout::Grouped] {
            let svg = bars_over_time(&days, &series, layout, Unit::Fen).unwrap();
            assert!(svg.starts_with("<svg width=\"1000\""), "{svg}");
            assert!(!svg.contains("http"), "{svg}");
            assert!(svg.contains("11-02") && svg.contains("11-04"));
            assert_eq!(
                svg,
                bars_over_time(&days, &series, layout, Unit::Fen).unwrap()
            );
        }
        let svg = lines_over_time(&days, &series, Unit::Fen).unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        let svg = bars_by_label(&["b<&".into(), "a".into()], &[3, 1], Unit::Count).unwrap();
        // Labels are escaped by the SVG backend.
        assert!(svg.contains("b&lt;&amp;"), "{svg}");
    }
}
