//! The comparison report: Glint-style tables (held-out perplexity and training time per dataset
//! and topic count for every system, with glint-lda's ratio to each), an inline SVG plot of
//! held-out perplexity against training seconds, throughput bars and the top words of each
//! topic. Rendered as one self-contained HTML page (no scripts, no external resources) and as a
//! Markdown twin.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

/// One trained model as the report sees it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// System name ("glint-lda", "tomotopy", "mllib-em", ...).
    pub system: String,
    /// Dataset label (a corpus name or size).
    pub dataset: String,
    pub topics: usize,
    pub heldout_perplexity: f64,
    /// Training wall-clock seconds (evaluation excluded), when known.
    pub train_seconds: Option<f64>,
    /// Training tokens per second, when known.
    pub tokens_per_s: Option<f64>,
    /// (training seconds, held-out perplexity) during training, when logged.
    pub curve: Vec<(f64, f64)>,
    /// Top words of the first topics.
    pub top_words: Vec<Vec<String>>,
}

const GLINT: &str = "glint-lda";
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "–".into(), |s| format!("{s:.1}"))
}

/// Rows of the comparison table: (dataset, K) → runs, each system's median over its runs.
struct Cell {
    system: String,
    perplexity: f64,
    seconds: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn table(runs: &[RunSummary]) -> BTreeMap<(String, usize), Vec<Cell>> {
    let mut groups: BTreeMap<(String, usize), BTreeMap<String, Vec<&RunSummary>>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.dataset.clone(), r.topics))
            .or_default()
            .entry(r.system.clone())
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(key, systems)| {
            let cells = systems
                .into_iter()
                .map(|(system, rs)| Cell {
                    system,
                    perplexity: median(rs.iter().map(|r| r.heldout_perplexity).collect())
                        .unwrap_or(f64::NAN),
                    seconds: median(rs.iter().filter_map(|r| r.train_seconds).collect()),
                })
                .collect();
            (key, cells)
        })
        .collect()
}

/// glint-lda's perplexity and time over another system's, as "p× / t×".
fn ratio(cells: &[Cell], other: &Cell) -> String {
    let Some(g) = cells.iter().find(|c| c.system == GLINT) else {
        return "–".into();
    };
    if other.system == GLINT {
        return "1".into();
    }
    let t = match (g.seconds, other.seconds) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    };
    format!("{:.3}× / {t}", g.perplexity / other.perplexity)
}

/// A run's palette index, the run, and its (seconds, perplexity) points.
type Plotted<'a> = (usize, &'a RunSummary, Vec<(f64, f64)>);

fn svg_curves(runs: &[RunSummary]) -> String {
    let pts: Vec<Plotted> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut c = r.curve.clone();
            if c.is_empty()
                && let Some(t) = r.train_seconds
            {
                c.push((t, r.heldout_perplexity));
            }
            (i, r, c)
        })
        .filter(|(_, _, c)| !c.is_empty())
        .collect();
    let (w, h, m) = (720.0, 360.0, 56.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"held-out perplexity against training seconds\">"
    );
    if pts.is_empty() {
        s.push_str("<text x=\"20\" y=\"40\">no timed runs</text></svg>");
        return s;
    }
    let all = || pts.iter().flat_map(|(_, _, c)| c.iter());
    let xmax = all().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
    let ymin = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let ymax = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (ylo, yhi) = if ymax > ymin {
        (ymin - 0.05 * (ymax - ymin), ymax + 0.05 * (ymax - ymin))
    } else {
        (ymin * 0.95, ymin * 1.05 + 1.0)
    };
    let x = |v: f64| m + v / xmax * (w - 2.0 * m);
    let y = |v: f64| h - m - (v - ylo) / (yhi - ylo) * (h - 2.0 * m);
    let _ = write!(
        s,
        "<rect x=\"{m}\" y=\"{m}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        w - 2.0 * m,
        h - 2.0 * m
    );
    for i in 0..=4 {
        let fx = xmax * f64::from(i) / 4.0;
        let fy = ylo + (yhi - ylo) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{fx:.0}s</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{fy:.0}</text>",
            x(fx),
            h - m + 16.0,
            m - 4.0,
            y(fy) + 4.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">training seconds</text>\
         <text x=\"14\" y=\"{:.1}\" font-size=\"12\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">held-out perplexity</text>",
        w / 2.0,
        h - 12.0,
        h / 2.0,
        h / 2.0
    );
    for (n, (i, r, c)) in pts.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line: Vec<String> = c
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            line.join(" ")
        );
        for &(a, b) in c {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>",
                x(a),
                y(b)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{color}\">{} K={} {}</text>",
            w - m - 210.0,
            m + 16.0 + 14.0 * n as f64,
            esc(&r.system),
            r.topics,
            esc(&r.dataset)
        );
    }
    s.push_str("</svg>");
    s
}

fn svg_throughput(runs: &[RunSummary]) -> String {
    let bars: Vec<(&RunSummary, f64)> = runs
        .iter()
        .filter_map(|r| r.tokens_per_s.map(|t| (r, t)))
        .collect();
    let (w, row) = (720.0, 20.0);
    let h = 20.0 + row * bars.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"training throughput\">"
    );
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9);
    for (i, (r, t)) in bars.iter().enumerate() {
        let yy = 10.0 + row * i as f64;
        let len = t / max * (w - 330.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">{} K={} {}</text>\
             <rect x=\"220\" y=\"{yy:.1}\" width=\"{len:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{:.2}M tokens/s</text>",
            yy + 12.0,
            esc(&r.system),
            r.topics,
            esc(&r.dataset),
            row - 6.0,
            PALETTE[i % PALETTE.len()],
            225.0 + len,
            yy + 12.0,
            t / 1e6
        );
    }
    s.push_str("</svg>");
    s
}

/// The report as a self-contained HTML page.
pub fn render_html(title: &str, runs: &[RunSummary]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}th{{background:#f3f3f3}}\
         td.l{{text-align:left}}</style></head><body><h1>{t}</h1>\
         <p>Held-out perplexity by document completion, every system scored by the same code \
         (<code>glint-lda eval</code>); seconds are training time. Ratios are glint-lda's perplexity / time \
         over the system's (below 1 is better for glint-lda). Medians over runs.</p>",
        t = esc(title)
    );
    s.push_str("<h2>Held-out perplexity and training time</h2><table><tr><th>dataset</th><th>K</th><th>system</th><th>perplexity</th><th>seconds</th><th>glint-lda ratio</th></tr>");
    for ((dataset, k), cells) in table(runs) {
        for c in &cells {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{k}</td><td class=\"l\">{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                esc(&dataset),
                esc(&c.system),
                c.perplexity,
                secs(c.seconds),
                ratio(&cells, c)
            );
        }
    }
    s.push_str("</table><h2>Held-out perplexity against training seconds</h2>");
    s.push_str(&svg_curves(runs));
    s.push_str("<h2>Throughput</h2>");
    s.push_str(&svg_throughput(runs));
    s.push_str("<h2>Top words</h2>");
    for r in runs {
        let _ = write!(
            s,
            "<h3>{} K={} {}</h3><ol start=\"0\">",
            esc(&r.system),
            r.topics,
            esc(&r.dataset)
        );
        for words in &r.top_words {
            let _ = write!(s, "<li>{}</li>", esc(&words.join(" ")));
        }
        s.push_str("</ol>");
    }
    s.push_str("</body></html>\n");
    s
}

/// The same report as Markdown (tables and top words; the plots are in the HTML).
pub fn render_markdown(title: &str, runs: &[RunSummary]) -> String {
    let mut s = format!(
        "# {title}\n\nHeld-out perplexity by document completion, every system scored by `glint-lda eval`; \
         seconds are training time; ratios are glint-lda's perplexity / time over the system's. Medians over runs.\n\n\
         | dataset | K | system | perplexity | seconds | glint-lda ratio |\n|---|---|---|---|---|---|\n"
    );
    for ((dataset, k), cells) in table(runs) {
        for c in &cells {
            let _ = writeln!(
                s,
                "| {dataset} | {k} | {} | {:.1} | {} | {} |",
                c.system,
                c.perplexity,
                secs(c.seconds),
                ratio(&cells, c)
            );
        }
    }
    s.push_str("\n## Top words\n");
    for r in runs {
        let _ = writeln!(s, "\n### {} K={} {}\n", r.system, r.topics, r.dataset);
        for (i, words) in r.top_words.iter().enumerate() {
            let _ = writeln!(s, "{i}. {}", words.join(" "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &str, k: usize, ppl: f64, t: f64) -> RunSummary {
        RunSummary {
            system: system.into(),
            dataset: "news <1>".into(),
            topics: k,
            heldout_perplexity: ppl,
            train_seconds: Some(t),
            tokens_per_s: Some(1e6),
            curve: vec![(t / 2.0, ppl * 1.1), (t, ppl)],
            top_words: vec![vec!["a&b".into(), "c".into()]],
        }
    }

    #[test]
    fn tables_hold_medians_and_ratios_and_text_is_escaped() {
        let runs = vec![
            run("glint-lda", 20, 100.0, 10.0),
            run("tomotopy", 20, 200.0, 40.0),
            run("tomotopy", 20, 220.0, 20.0),
        ];
        let md = render_markdown("t", &runs);
        assert!(
            md.contains("| news <1> | 20 | tomotopy | 210.0 | 30.0 | 0.476× / 0.33× |"),
            "{md}"
        );
        let html = render_html("t", &runs);
        assert!(html.contains("news &lt;1&gt;") && html.contains("a&amp;b"));
        assert!(!html.contains("<script"));
        assert_eq!(html.matches("<polyline").count(), 3);
    }
}
