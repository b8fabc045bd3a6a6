//! The daily cost chart as inline SVG: one bar a day, stacked by series
//! (positive costs up from zero, credits down). Every segment carries its
//! exact value (`data-cost`), its day and its series; geometry alone uses f64.

use super::html::esc;
use super::view::DailyChart;
use crate::money::{display, Money};
use rust_decimal::prelude::ToPrimitive;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Series colours (the last one is "Other").
pub const PALETTE: [&str; 9] = [
    "#2f6fdf", "#f28e2b", "#3aa57a", "#d9534f", "#8e6bbf", "#c9a227", "#17a2b8", "#e377c2",
    "#9aa3ad",
];

/// The colour of series `j` of `n` (the last of more than eight is grey).
pub fn colour(j: usize, n: usize) -> &'static str {
    if n > PALETTE.len() - 1 && j == n - 1 {
        PALETTE[PALETTE.len() - 1]
    } else {
        PALETTE[j % (PALETTE.len() - 1)]
    }
}

fn f(m: Money) -> f64 {
    m.to_f64().unwrap_or(0.0)
}

/// A step of 1, 2 or 5 times a power of ten giving about four grid lines.
fn nice_step(span: f64) -> f64 {
    if span <= 0.0 {
        return 1.0;
    }
    let raw = span / 4.0;
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

fn axis_label(v: f64) -> String {
    let s = display(Money::from(v.round() as i64));
    s.strip_suffix(".00").unwrap_or(&s).to_owned()
}

/// The chart's `<svg>` element.
pub fn stacked_bars(chart: &DailyChart) -> String {
    let mut top = Money::ZERO;
    let mut bottom = Money::ZERO;
    for d in &chart.days {
        let up: Money = d.costs.iter().filter(|c| c.is_sign_positive()).sum();
        let down: Money = d.costs.iter().filter(|c| c.is_sign_negative()).sum();
        top = top.max(up);
        bottom = bottom.min(down);
    }
    let step = nice_step(f(top) - f(bottom));
    let (hi, lo) = (
        (f(top) / step).ceil().max(1.0) * step,
        (f(bottom) / step).floor() * step,
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * plot_h;
    let n = chart.days.len().max(1) as f64;
    let band = (WIDTH - LEFT - RIGHT) / n;
    let bar = (band * 0.72).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="daily-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="cost by day, stacked by service">"#
    );
    let mut tick = lo;
    while tick <= hi + step / 2.0 {
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 8.0,
            y(tick) + 4.0,
            esc(&axis_label(tick)),
            y = y(tick),
        );
        tick += step;
    }
    let every = (28.0 / band).ceil().max(1.0) as usize;
    let n_series = chart.series.len();
    for (i, d) in chart.days.iter().enumerate() {
        let x = LEFT + band * i as f64 + (band - bar) / 2.0;
        let _ = write!(
            s,
            r#"<g class="day" data-day="{}" data-total="{}">"#,
            esc(&d.day),
            d.total()
        );
        let (mut up, mut down) = (Money::ZERO, Money::ZERO);
        for (j, c) in d.costs.iter().enumerate() {
            if c.is_zero() {
                continue;
            }
            let (from, to) = if c.is_sign_positive() {
                up += c;
                (up - c, up)
            } else {
                down += c;
                (down - c, down)
            };
            let (y0, y1) = (y(f(from)), y(f(to)));
            let series = chart.series.get(j).map_or("", String::as_str);
            let _ = write!(
                s,
                r#"<rect class="seg" data-series="{}" data-day="{}" data-cost="{}" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{:.2}" fill="{}"><title>{} · {}: {}</title></rect>"#,
                esc(series),
                esc(&d.day),
                c,
                y0.min(y1),
                (y0 - y1).abs().max(0.5),
                colour(j, n_series),
                esc(&d.day),
                esc(series),
                esc(&display(*c)),
            );
        }
        s.push_str("</g>");
        if i % every == 0 {
            let label = d.day.get(8..10).unwrap_or(&d.day);
            let _ = write!(
                s,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                HEIGHT - 8.0,
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="zero" x1="{LEFT}" x2="{:.1}" y1="{y0:.1}" y2="{y0:.1}"/></svg>"#,
        WIDTH - RIGHT,
        y0 = y(0.0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten_and_give_at_most_four_lines() {
        for span in [1000.0, 90.0, 7.0, 0.3, 123_456.0] {
            let got = nice_step(span);
            let mantissa = got / 10f64.powf(got.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9),
                "{span}: {got}"
            );
            assert!(got >= span / 4.0 && got <= span, "{span}: {got}");
        }
        assert_eq!(nice_step(0.0), 1.0);
    }
}
