//! PNG plots of the trainer: scatter panels of samples and loss curves, side by side, with the
//! core crate's embedded font ([`midpoint::plot::ensure_font`]).

use midpoint::plot::{draw_atomically, PlotError};
use ndarray::Array2;
use plotters::prelude::*;
use std::path::Path;

/// One scatter panel: a title and samples (first two columns are plotted; 1-D samples are
/// spread vertically by their index).
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// Caption.
    pub title: String,
    /// Samples, one per row.
    pub points: &'a Array2<f64>,
}

/// One line panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Caption.
    pub title: String,
    /// `(x, y)` in order of `x`.
    pub points: Vec<(f64, f64)>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn xy(points: &Array2<f64>) -> Vec<(f64, f64)> {
    let n = points.nrows().max(1) as f64;
    points
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if r.len() >= 2 {
                (r[0], r[1])
            } else {
                (r[0], i as f64 / n)
            }
        })
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// Robust axis range: the 0.1% and 99.9% quantiles of all panels, padded by 5%, so that a few
/// far outliers do not squash the picture (points outside are clipped).
fn range(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (-1.0, 1.0);
    }
    values.sort_by(f64::total_cmp);
    let q = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.001), q(0.999));
    let pad = 0.05 * (hi - lo).max(1e-9);
    (lo - pad, hi + pad)
}

/// Scatter panels side by side in one PNG (500 × 500 pixels each), all on the same axes.
pub fn scatter_panels(path: &Path, panels: &[Panel<'_>]) -> Result<(), PlotError> {
    draw_atomically(path, |tmp| draw_scatter_panels(tmp, panels))
}

fn draw_scatter_panels(path: &Path, panels: &[Panel<'_>]) -> Result<(), PlotError> {
    let data: Vec<Vec<(f64, f64)>> = panels.iter().map(|p| xy(p.points)).collect();
    let (x0, x1) = range(&mut data.iter().flatten().map(|p| p.0).collect::<Vec<_>>());
    let (y0, y1) = range(&mut data.iter().flatten().map(|p| p.1).collect::<Vec<_>>());
    let size = 500u32;
    // At most six panels a row (a study's eleven panels read as two rows).
    let cols = panels.len().clamp(1, 6);
    let rows = panels.len().max(1).div_ceil(cols);
    let root = BitMapBackend::new(path, (size * cols as u32, (size + 20) * rows as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((rows, cols));
    for ((panel, pts), area) in panels.iter().zip(&data).zip(&areas) {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(path, e))?;
        let color = RGBColor(31, 119, 180).mix(0.35);
        chart
            .draw_series(
                pts.iter()
                    .filter(|(x, y)| (x0..=x1).contains(x) && (y0..=y1).contains(y))
                    .map(|&p| Circle::new(p, 1, color.filled())),
            )
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

/// Line panels side by side in one PNG (600 × 400 pixels each), each with its own y range.
pub fn loss_panels(path: &Path, series: &[Series]) -> Result<(), PlotError> {
    draw_atomically(path, |tmp| draw_loss_panels(tmp, series))
}

fn draw_loss_panels(path: &Path, series: &[Series]) -> Result<(), PlotError> {
    // At most four panels a row, so that a run with many health signals stays readable.
    let cols = series.len().clamp(1, 4);
    let rows = series.len().max(1).div_ceil(cols);
    let root = BitMapBackend::new(path, (600 * cols as u32, 400 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((rows, cols));
    for (s, area) in series.iter().zip(&areas) {
        let finite: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = finite.iter().copied().unzip();
        let (x0, x1) = range(&mut xs);
        let (y0, y1) = range(&mut ys);
        let mut chart = ChartBuilder::on(area)
            .caption(&s.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                finite,
                RGBColor(214, 39, 40).stroke_width(2),
            ))
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

/// One panel of several curves with a legend ([`comparison_panels`]).
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Caption.
    pub title: String,
    /// Label of the x axis.
    pub x_desc: String,
    /// One curve per entry (`title` is its legend entry); non-positive or non-finite values are
    /// left out, since both axes are logarithmic.
    pub series: Vec<Series>,
}

/// Panels of several curves each, side by side (700 × 450 pixels each), both axes logarithmic
/// (values across orders of magnitude: a one-step map that failed beside ones at the floor);
/// the x axis is drawn in `log2` with labels `2^k` (step counts, seconds).
pub fn comparison_panels(path: &Path, panels: &[Comparison]) -> Result<(), PlotError> {
    draw_atomically(path, |tmp| draw_comparison_panels(tmp, panels))
}

fn draw_comparison_panels(path: &Path, panels: &[Comparison]) -> Result<(), PlotError> {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().max(1).div_ceil(cols);
    let root = BitMapBackend::new(path, (700 * cols as u32, 450 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((rows, cols));
    for (p, area) in panels.iter().zip(&areas) {
        let keep = |(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0;
        let all: Vec<(f64, f64)> = p
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied().filter(keep))
            .collect();
        if all.is_empty() {
            continue;
        }
        let all: Vec<(f64, f64)> = all.iter().map(|&(x, y)| (x.log2(), y)).collect();
        let (lo_x, hi_x) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
        let (lo_y, hi_y) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(
                lo_x - 0.2..hi_x + 0.2,
                (lo_y * 0.8..hi_y * 1.25).log_scale(),
            )
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(p.x_desc.as_str())
            .x_labels(((hi_x - lo_x).ceil() as usize + 1).clamp(2, 12))
            .x_label_formatter(&|v| format!("{:.0}", v.exp2()))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(path, e))?;
        for (i, s) in p.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(keep)
                .map(|(x, y)| (x.log2(), y))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| err(path, e))?
                .label(s.title.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.into_iter().map(|q| Circle::new(q, 3, color.filled())))
                .map_err(|e| err(path, e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
