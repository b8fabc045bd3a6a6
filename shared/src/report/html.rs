//! The cost report as one self-contained HTML page: inline CSS, inline SVG,
//! a few lines of inline script, and a Content-Security-Policy that forbids
//! every fetch. Every string from the data goes through [`esc`]; money is
//! formatted for display here, at the very end ([`display`]), while the
//! exact values ride along as `data-cost` attributes.

use super::chart::{colour, stacked_bars};
use super::view::{CommitmentsView, Comparison, ConnectionRow, FinalityRow, Ranked, ReportView};
use crate::money::{display, Money};
use crate::output::Finality;
use std::fmt::Write;

/// `s` safe as HTML text and as a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(f: Money) -> String {
    // Beyond a decimal's range (a share of a total that credits cancelled
    // to almost nothing) is shown as "-", never a panic.
    match f.checked_mul(Money::ONE_HUNDRED) {
        Some(p) => format!("{:.1}%", p.round_dp(1)),
        None => "-".into(),
    }
}

fn opt_money(m: Option<Money>) -> String {
    m.map_or("-".into(), display)
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

const STYLE: &str = r#"
:root{--ink:#1d2733;--muted:#5f6b7a;--line:#e3e7ed;--bg:#f5f7fa;--card:#fff;--up:#c0392b;--down:#1e8449}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1040px;margin:0 auto;padding:28px 24px 48px}
header h1{font-size:22px;margin:0 0 2px}
header p{margin:0;color:var(--muted)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:14px;margin:20px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:24px;font-weight:600;margin-top:4px;font-variant-numeric:tabular-nums}
.kpi .sub{color:var(--muted);font-size:12px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:16px 0}
section h2{font-size:16px;margin:0 0 12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.grid2 section{margin:0}
svg{width:100%;height:auto;display:block}
svg .grid{stroke:var(--line);stroke-width:1}
svg .zero{stroke:#9aa3ad;stroke-width:1}
svg .axis{fill:var(--muted);font-size:11px}
svg rect.seg{transition:opacity .15s}
.dim rect.seg{opacity:.18}.dim rect.seg.hl{opacity:1}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:10px 0 0;padding:0;list-style:none;font-size:12px}
.legend li{display:flex;align-items:center;gap:6px;cursor:default}
.swatch{width:11px;height:11px;border-radius:3px;display:inline-block}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
td.nw{white-space:nowrap}
td.rev{font-size:12px;word-break:break-all}
tr.total td{font-weight:600;border-bottom:none}
.bar{height:6px;background:#e8eef8;border-radius:3px;margin-top:4px}
.bar span{display:block;height:6px;border-radius:3px;background:#2f6fdf}
.up{color:var(--up)}.down{color:var(--down)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.b-final,.b-connected{background:#e3f4ea;color:#1e6b3a}
.b-estimated,.b-pending,.b-degraded{background:#fdf1dc;color:#8a5a00}
.b-broken,.b-disconnected,.b-unknown{background:#fbe4e2;color:#9b2c20}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic;margin:0}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
@media (max-width:760px){.grid2{grid-template-columns:1fr}}
"#;

/// Records any script error, failed load or blocked fetch on `<html data-errors>`.
const WATCH: &str = r#"(function(){var h=document.documentElement;function note(m){h.setAttribute('data-errors',(h.getAttribute('data-errors')||'')+m+'\n')}
window.addEventListener('error',function(e){note(e.message||('failed to load '+((e.target&&(e.target.src||e.target.href))||'a resource')))},true);
window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+e.reason)});
document.addEventListener('securitypolicyviolation',function(e){note('blocked: '+e.blockedURI)});})();"#;

/// Legend hover highlights a series; then the page says it is ready.
const INTERACT: &str = r#"(function(){var svg=document.getElementById('daily-chart');
document.querySelectorAll('.legend li').forEach(function(li){
li.addEventListener('mouseenter',function(){svg.classList.add('dim');svg.querySelectorAll('rect.seg').forEach(function(r){if(r.getAttribute('data-series')===li.getAttribute('data-series'))r.classList.add('hl')})});
li.addEventListener('mouseleave',function(){svg.classList.remove('dim');svg.querySelectorAll('rect.hl').forEach(function(r){r.classList.remove('hl')})});});
document.documentElement.setAttribute('data-ready','1');})();"#;

/// The whole page.
pub fn render(v: &ReportView) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let title = format!("curlew: {} {} {}", v.tenant, v.period, v.measure.column());
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{}</title><script>{WATCH}</script><style>{STYLE}</style></head>
<body><main>
<header><h1>{} — {}</h1><p>tenant <b>{}</b> · {} (every source of the tenant summed; only what CURRENT names)</p></header>
"#,
        esc(&title),
        esc(v.measure.column()),
        esc(&v.period),
        esc(&v.tenant),
        esc(v.measure.column()),
    );
    kpis(&mut s, v);
    s.push_str(r#"<section id="daily"><h2>Cost by day, stacked by service</h2>"#);
    if v.daily.days.is_empty() {
        s.push_str(r#"<p class="empty">no cost in this period</p>"#);
    } else {
        s.push_str(&stacked_bars(&v.daily));
        legend(&mut s, v);
    }
    s.push_str("</section>\n<div class=\"grid2\">");
    ranked(
        &mut s,
        "top-services",
        "Top services",
        "Service",
        &v.top_services,
    );
    ranked(
        &mut s,
        "top-accounts",
        "Top accounts",
        "Account",
        &v.top_accounts,
    );
    s.push_str("</div>\n");
    comparison(&mut s, v);
    finality(&mut s, &v.finality);
    commitments(&mut s, v.commitments.as_ref());
    if !v.connections.is_empty() {
        connections(&mut s, &v.connections);
    }
    let _ = write!(
        s,
        "<footer>curlew {} · exact sums; amounts shown rounded to cents</footer>\n</main><script>{INTERACT}</script></body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn kpis(s: &mut String, v: &ReportView) {
    s.push_str(r#"<div class="kpis">"#);
    let _ = write!(
        s,
        r#"<div class="kpi" id="kpi-total" data-cost="{}"><div class="label">Total {}</div><div class="value">{}</div><div class="sub">{} day(s) with cost</div></div>"#,
        v.total,
        esc(&v.period),
        esc(&display(v.total)),
        v.daily.days.len()
    );
    if let Some(c) = &v.comparison {
        let change = c.current_total - c.previous_total;
        let pct = relative(change, c.previous_total).map_or(String::new(), |p| format!(" ({p})"));
        let _ = write!(
            s,
            r#"<div class="kpi"><div class="label">vs {}</div><div class="value {}">{}</div><div class="sub">previous: {}{}</div></div>"#,
            esc(&c.previous_period),
            updown(change),
            esc(&signed(change)),
            esc(&display(c.previous_total)),
            esc(&pct)
        );
    }
    let current: Vec<&FinalityRow> = v.finality.iter().filter(|f| f.period == v.period).collect();
    let all_final =
        !current.is_empty() && current.iter().all(|f| f.finality == Some(Finality::Final));
    let _ = write!(
        s,
        r#"<div class="kpi"><div class="label">Status</div><div class="value">{}</div><div class="sub">{} source(s)</div></div>"#,
        badge(if all_final { "final" } else { "estimated" }),
        current.len()
    );
    s.push_str("</div>\n");
}

/// A change with its sign (`+12.50`, `-3.00`).
fn signed(change: Money) -> String {
    if change > Money::ZERO {
        format!("+{}", display(change))
    } else {
        display(change)
    }
}

/// `change` against `base` as a percentage (`None` when `base` is zero).
fn relative(change: Money, base: Money) -> Option<String> {
    if base.is_zero() {
        None
    } else {
        change.checked_div(base).map(percent)
    }
}

fn updown(change: Money) -> &'static str {
    if change.is_zero() {
        ""
    } else if change.is_sign_positive() {
        "up"
    } else {
        "down"
    }
}

fn badge(state: &str) -> String {
    format!(r#"<span class="badge b-{0}">{0}</span>"#, esc(state))
}

fn legend(s: &mut String, v: &ReportView) {
    s.push_str(r#"<ul class="legend">"#);
    let n = v.daily.series.len();
    for (j, name) in v.daily.series.iter().enumerate() {
        let total: Money = v.daily.days.iter().map(|d| d.costs[j]).sum();
        let _ = write!(
            s,
            r#"<li data-series="{0}" data-cost="{1}"><span class="swatch" style="background:{2}"></span>{0} <span class="muted">{3}</span></li>"#,
            esc(name),
            total,
            colour(j, n),
            esc(&display(total))
        );
    }
    s.push_str("</ul>");
}

fn bar(share: Option<Money>) -> String {
    let w = share
        .and_then(|f| f.checked_mul(Money::ONE_HUNDRED))
        .map(|p| p.round_dp(1).clamp(Money::ZERO, Money::ONE_HUNDRED))
        .unwrap_or(Money::ZERO);
    format!(r#"<div class="bar"><span style="width:{w}%"></span></div>"#)
}

fn ranked(s: &mut String, id: &str, title: &str, what: &str, rows: &[Ranked]) {
    let _ = write!(
        s,
        r#"<section id="{id}"><h2>{title}</h2><table><thead><tr><th>{what}</th><th class="num">Cost</th><th class="num">Share</th></tr></thead><tbody>"#
    );
    for r in rows {
        let _ = write!(
            s,
            r#"<tr data-cost="{}"><td>{}{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            r.cost,
            esc(&r.name),
            bar(r.share),
            esc(&display(r.cost)),
            r.share.map_or("-".into(), percent)
        );
    }
    s.push_str("</tbody></table></section>\n");
}

fn comparison(s: &mut String, v: &ReportView) {
    s.push_str(r#"<section id="month-vs-previous"><h2>This month against the previous one</h2>"#);
    let Some(c): Option<&Comparison> = v.comparison.as_ref() else {
        s.push_str(r#"<p class="empty">no previous committed month</p></section>"#);
        return;
    };
    let _ = write!(
        s,
        r#"<table data-period="{}" data-previous-period="{}" data-total-current="{}" data-total-previous="{}"><thead><tr><th>Service</th><th class="num">{}</th><th class="num">{}</th><th class="num">Change</th></tr></thead><tbody>"#,
        esc(&v.period),
        esc(&c.previous_period),
        c.current_total,
        c.previous_total,
        esc(&c.previous_period),
        esc(&v.period)
    );
    for d in &c.rows {
        delta_row(s, "", &d.name, d.previous, d.current);
    }
    delta_row(s, "total", "Total", c.previous_total, c.current_total);
    s.push_str("</tbody></table></section>\n");
}

fn delta_row(s: &mut String, class: &str, name: &str, previous: Money, current: Money) {
    let change = current - previous;
    let pct = relative(change, previous).unwrap_or_else(|| "new".into());
    let _ = write!(
        s,
        r#"<tr class="{class}" data-name="{}" data-current="{current}" data-previous="{previous}"><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num {}">{} <span class="muted">{}</span></td></tr>"#,
        esc(name),
        esc(name),
        esc(&display(previous)),
        esc(&display(current)),
        updown(change),
        esc(&signed(change)),
        esc(&pct)
    );
}

fn finality(s: &mut String, rows: &[FinalityRow]) {
    s.push_str(r#"<section id="finality"><h2>Estimated or final</h2><table><thead><tr><th>Period</th><th>Payer</th><th>Report</th><th>Revision</th><th>Status</th><th>Invoices</th><th class="num">Cost</th></tr></thead><tbody>"#);
    for f in rows {
        let state = f.finality.map_or("unknown", Finality::as_str);
        let invoices = if f.invoice_ids.is_empty() {
            "none yet".to_owned()
        } else if f.rows_without_invoice > 0 {
            format!(
                "{} ({} row(s) without one)",
                f.invoice_ids.join(", "),
                f.rows_without_invoice
            )
        } else {
            f.invoice_ids.join(", ")
        };
        let _ = write!(
            s,
            r#"<tr data-period="{}" data-finality="{}"><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="muted rev">{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
            esc(&f.period),
            state,
            esc(&f.period),
            esc(&f.payer),
            esc(if f.report.is_empty() {
                "(bare files)"
            } else {
                &f.report
            }),
            esc(&f.revision),
            badge(state),
            esc(&invoices),
            esc(&display(f.cost))
        );
    }
    s.push_str(r#"</tbody></table><p class="muted">Estimated months change until AWS invoices them; a final month that changes again is a restatement.</p></section>"#);
    s.push('\n');
}

fn commitments(s: &mut String, c: Option<&CommitmentsView>) {
    s.push_str(r#"<section id="commitments"><h2>Commitments: utilization and coverage</h2>"#);
    match c {
        Some(c) if !c.rows.is_empty() => {
            s.push_str(r#"<table><thead><tr><th>Commitment</th><th class="num">Utilization</th><th class="num">Coverage</th><th class="num">Commitment cost</th><th class="num">Unused</th></tr></thead><tbody>"#);
            for r in &c.rows {
                let _ = write!(
                    s,
                    r#"<tr data-commitment="{}" data-utilization="{}" data-coverage="{}" data-cost="{}" data-unused="{}"><td>{}</td><td class="num">{}{}</td><td class="num">{}{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                    esc(&r.name),
                    exact(r.utilization),
                    exact(r.coverage),
                    exact(r.commitment),
                    exact(r.unused),
                    esc(&r.name),
                    r.utilization.map_or("-".into(), percent),
                    bar(r.utilization),
                    r.coverage.map_or("-".into(), percent),
                    bar(r.coverage),
                    esc(&opt_money(r.commitment)),
                    esc(&opt_money(r.unused)),
                );
            }
            s.push_str("</tbody></table>");
        }
        _ => s.push_str(r#"<p class="empty">no commitment data</p>"#),
    }
    s.push_str("</section>\n");
}

/// An exact value for a data attribute (empty for none).
fn exact(m: Option<Money>) -> String {
    m.map(|m| m.normalize().to_string()).unwrap_or_default()
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

fn connections(s: &mut String, rows: &[ConnectionRow]) {
    s.push_str(r#"<section id="connections"><h2>Connections</h2><table><thead><tr><th>Payer</th><th>Status</th><th>Cause</th><th>Last check</th><th>Last delivery</th></tr></thead><tbody>"#);
    for c in rows {
        let _ = write!(
            s,
            r#"<tr data-payer="{}" data-status="{}"><td class="nw">{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&c.payer),
            c.status.as_str(),
            esc(&c.payer),
            badge(c.status.as_str()),
            esc(c.cause.as_deref().unwrap_or("-")),
            c.remedy
                .as_deref()
                .map(|r| format!(r#"<div class="muted">{}</div>"#, esc(r)))
                .unwrap_or_default(),
            time(c.last_checked_at),
            time(c.last_delivery_at)
        );
    }
    s.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::super::view::{CommitmentRow, DailyChart, Day};
    use super::*;

    #[test]
    fn a_share_beyond_a_decimal_is_a_dash_not_a_panic() {
        assert_eq!(percent(Money::MAX), "-");
        assert_eq!(relative(Money::MAX, Money::new(1, 18)), None);
        assert_eq!(relative(Money::ONE, Money::ZERO), None);
        assert_eq!(relative(Money::ONE, Money::TWO), Some("50.0%".into()));
        assert!(bar(Some(Money::MAX)).contains("width:0%"));
    }
    use crate::money::dec;
    use crate::rollup::Measure;

    fn view() -> ReportView {
        ReportView {
            tenant: "<acme & co>".into(),
            measure: Measure::Billed,
            period: "2024-02".into(),
            total: dec("3.5"),
            daily: DailyChart {
                series: vec!["A\"<b>".into()],
                days: vec![Day {
                    day: "2024-02-01".into(),
                    costs: vec![dec("3.5")],
                }],
            },
            top_accounts: Vec::new(),
            top_services: Vec::new(),
            comparison: None,
            finality: Vec::new(),
            connections: Vec::new(),
            commitments: None,
        }
    }

    #[test]
    fn every_string_from_the_data_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let page = render(&view());
        assert!(!page.contains("<acme"), "tenant escaped");
        assert!(page.contains("&lt;acme &amp; co&gt;"));
        assert!(!page.contains("A\"<b>"), "series escaped");
        assert!(page.contains(r#"data-series="A&quot;&lt;b&gt;""#));
    }

    #[test]
    fn nothing_is_fetched_and_commitments_show_when_present() {
        let mut v = view();
        let page = render(&v);
        for fetch in ["http://", "https://", "src=", "href=", "url("] {
            assert!(!page.contains(fetch), "nothing to fetch: {fetch}");
        }
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains("no commitment data"));
        assert!(
            !page.contains(r#"id="connections""#),
            "no registry, no section"
        );
        v.commitments = Some(CommitmentsView {
            rows: vec![CommitmentRow {
                name: "Savings Plans <compute>".into(),
                utilization: Some(dec("0.875")),
                coverage: Some(dec("0.5")),
                commitment: Some(dec("1234.5")),
                unused: None,
            }],
        });
        let page = render(&v);
        assert!(!page.contains("no commitment data"));
        assert!(page.contains("Savings Plans &lt;compute&gt;"));
        // 0.875 and 0.5 as percentages, 1234.5 as money
        for shown in ["87.5%", "50.0%", "1,234.50"] {
            assert!(page.contains(shown), "{shown}");
        }
    }
}
