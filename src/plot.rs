//! PNG plots with an embedded font, so rendering needs no system font libraries.
//!
//! plotters draws text through `ab_glyph` from DejaVu Sans (`assets/DejaVuSans.ttf`, Bitstream
//! Vera licence, see `assets/DejaVuSans.LICENSE`), registered once under the family names
//! `sans-serif` and `serif`. Call [`ensure_font`] before drawing; the helpers here do.

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font (idempotent, thread-safe).
pub fn ensure_font() {
    REGISTER.call_once(|| {
        for family in ["sans-serif", "serif"] {
            plotters::style::register_font(family, FontStyle::Normal, FONT)
                .unwrap_or_else(|_| panic!("embedded font is valid"));
        }
    });
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot draw plot: {message}")]
pub struct PlotError {
    /// The output file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub message: String,
}

/// One named curve with an optional band `(lower, upper)` around it.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points in order of `x`.
    pub points: Vec<(f64, f64)>,
    /// Band limits at the same `x`, if any.
    pub band: Option<Vec<(f64, f64)>>,
}

/// Line plot of several curves (with shaded bands) into a PNG file.
///
/// ```
/// use midpoint::plot::{line_plot, Curve};
/// let dir = std::env::temp_dir().join("midpoint-doc-plot.png");
/// let c = Curve { label: "y = x²".into(), points: (0..10).map(|i| (i as f64, (i * i) as f64)).collect(), band: None };
/// line_plot(&dir, "demo", "x", "y", &[c]).unwrap();
/// assert!(std::fs::metadata(&dir).unwrap().len() > 1000);
/// ```
pub fn line_plot(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    curves: &[Curve],
) -> Result<(), PlotError> {
    draw_atomically(path, |tmp| {
        draw_line_plot(tmp, title, xlabel, ylabel, curves)
    })
}

/// Runs `draw` on a temporary file beside `path` (same extension) and renames it into place
/// once complete ([`crate::io::write_atomically`]): never a half-drawn PNG under `path`. Errors
/// name `path`, not the temporary file. Registers the font first.
pub fn draw_atomically(
    path: &Path,
    draw: impl FnOnce(&Path) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    ensure_font();
    crate::io::write_atomically(path, |tmp| draw(tmp).map_err(|e| e.message)).map_err(|e| {
        PlotError {
            path: path.to_path_buf(),
            message: match e {
                crate::io::FormatError::Io { message, .. } => message,
                other => other.to_string(),
            },
        }
    })
}

fn draw_line_plot(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    curves: &[Curve],
) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let all = curves.iter().flat_map(|c| {
        c.points.iter().copied().chain(
            c.band
                .iter()
                .flatten()
                .flat_map(|&(lo, hi)| [(f64::NAN, lo), (f64::NAN, hi)]),
        )
    });
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        if x.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
        }
        if y.is_finite() {
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 >= x1 {
        (x0, x1) = (x0 - 0.5, x0 + 0.5);
    }
    if y0 >= y1 {
        (y0, y1) = (y0 - 0.5, y0 + 0.5);
    }
    let pad = 0.05 * (y1 - y0);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .y_desc(ylabel)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, c) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if let Some(band) = &c.band {
            let upper: Vec<(f64, f64)> = c
                .points
                .iter()
                .zip(band)
                .map(|(&(x, _), &(_, hi))| (x, hi))
                .collect();
            let lower: Vec<(f64, f64)> = c
                .points
                .iter()
                .zip(band)
                .rev()
                .map(|(&(x, _), &(lo, _))| (x, lo))
                .collect();
            let poly: Vec<(f64, f64)> = upper.into_iter().chain(lower).collect();
            chart
                .draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .draw_series(LineSeries::new(c.points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
