//! Localization tables as CSV with ThunderSTORM's column names and units, so that files go
//! both ways between Fluorecon and ThunderSTORM (and tools that read its format: SMAP,
//! Picasso's importer, SRX…).
//!
//! Columns: id, frame, x [nm], y [nm], sigma [nm], intensity [photon], offset [photon],
//! bkgstd [photon], uncertainty [nm]. On import only frame, x [nm] and y [nm] are required;
//! ThunderSTORM's newer "uncertainty_xy [nm]" is read as "uncertainty [nm]".

use super::Localization;
use crate::io::atomic::write_atomic;
use crate::{invalid, Error, Result};
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

/// The CSV header, in order.
pub const COLUMNS: [&str; 9] = [
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty [nm]",
];

/// Writes `locs` as ThunderSTORM CSV; ids count from 1.
pub fn write_csv(w: &mut impl Write, locs: &[Localization]) -> std::io::Result<()> {
    let header: Vec<String> = COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
    writeln!(w, "{}", header.join(","))?;
    for (k, l) in locs.iter().enumerate() {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{}",
            k + 1,
            l.frame,
            l.x_nm,
            l.y_nm,
            l.sigma_nm,
            l.photons,
            l.background,
            l.bkgstd,
            l.uncertainty_nm
        )?;
    }
    Ok(())
}

/// Writes a CSV file atomically (a partial file never appears under `path`).
pub fn write_csv_file(path: &Path, locs: &[Localization]) -> Result<()> {
    write_atomic(path, |f| {
        let mut w = BufWriter::new(f);
        write_csv(&mut w, locs)?;
        w.flush()
    })
}

/// Reads a ThunderSTORM-style CSV. `what` names the source in messages.
pub fn read_csv(r: impl BufRead, what: &str) -> Result<Vec<Localization>> {
    let mut lines = r.lines();
    let header = match lines.next() {
        Some(Ok(h)) if !h.trim().is_empty() => h,
        Some(Err(e)) => return invalid!("{what}: cannot read: {e}"),
        _ => return invalid!("{what} is empty: expected a CSV with a header line"),
    };
    let names: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').trim().to_string())
        .collect();
    let find = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
    let required = [
        ("frame", find(&["frame"])),
        ("x [nm]", find(&["x [nm]"])),
        ("y [nm]", find(&["y [nm]"])),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| c.1.is_none())
        .map(|c| c.0)
        .collect();
    if !missing.is_empty() {
        return invalid!(
            "{what} lacks the column(s) {}; found {}. A ThunderSTORM localization table \
             has the columns {}",
            quoted(&missing),
            quoted(&names.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            quoted(&COLUMNS)
        );
    }
    let [frame_c, x_c, y_c] = required.map(|c| c.1.expect("checked above"));
    let optional = [
        find(&["sigma [nm]"]),
        find(&["intensity [photon]"]),
        find(&["offset [photon]"]),
        find(&["bkgstd [photon]"]),
        find(&["uncertainty [nm]", "uncertainty_xy [nm]"]),
    ];
    let mut out = Vec::new();
    for (k, line) in lines.enumerate() {
        let line = line.map_err(|e| Error::InvalidInput(format!("{what}: cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let line_no = k + 2;
        let fields: Vec<&str> = line.split(',').collect();
        let value = |c: usize| -> Result<f64> {
            let s = fields
                .get(c)
                .map(|s| s.trim().trim_matches('"'))
                .unwrap_or("");
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => invalid!(
                    "{what}, line {line_no}: \"{s}\" in column \"{}\" is not a number",
                    names[c]
                ),
            }
        };
        let frame = value(frame_c)?;
        if frame < 0.0 || frame > u32::MAX as f64 {
            return invalid!("{what}, line {line_no}: frame {frame} is out of range");
        }
        let mut opt = [0.0f32; 5];
        for (o, c) in opt.iter_mut().zip(optional) {
            if let Some(c) = c {
                *o = value(c)? as f32;
            }
        }
        // Lengths (σ, uncertainty) cannot be negative: such a file was edited or is corrupt.
        for (v, c) in [(opt[0], optional[0]), (opt[4], optional[4])] {
            if let (true, Some(c)) = (v < 0.0, c) {
                return invalid!(
                    "{what}, line {line_no}: {v} in column \"{}\" is negative (it is a length)",
                    names[c]
                );
            }
        }
        out.push(Localization {
            frame: frame.round() as u32,
            x_nm: value(x_c)? as f32,
            y_nm: value(y_c)? as f32,
            sigma_nm: opt[0],
            photons: opt[1],
            background: opt[2],
            bkgstd: opt[3],
            uncertainty_nm: opt[4],
        });
    }
    Ok(out)
}

/// Reads a CSV file (see [`read_csv`]).
pub fn read_csv_file(path: &Path) -> Result<Vec<Localization>> {
    let f = std::fs::File::open(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot open: {e}"),
    })?;
    read_csv(std::io::BufReader::new(f), &path.display().to_string())
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_thunderstorm_import() {
        let locs = vec![
            Localization {
                frame: 1,
                x_nm: 1234.5678,
                y_nm: 0.25,
                sigma_nm: 121.5,
                photons: 2000.125,
                background: 19.5,
                bkgstd: 4.25,
                uncertainty_nm: 5.125,
            },
            Localization {
                frame: 7,
                x_nm: 6399.9,
                ..Localization::default()
            },
        ];
        let mut buf = Vec::new();
        write_csv(&mut buf, &locs).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with("\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\""));
        assert_eq!(read_csv(&buf[..], "test").unwrap(), locs);

        // As ThunderSTORM writes it: frame as a float, uncertainty_xy, columns reordered.
        let ts = "\"id\",\"frame\",\"y [nm]\",\"x [nm]\",\"sigma [nm]\",\"intensity [photon]\",\
                  \"offset [photon]\",\"bkgstd [photon]\",\"chi2\",\"uncertainty_xy [nm]\"\n\
                  1.0,3.0,200.5,100.5,130.0,1500.0,12.0,3.5,1.2,8.5\n";
        let got = read_csv(ts.as_bytes(), "ts.csv").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].frame, got[0].x_nm, got[0].y_nm), (3, 100.5, 200.5));
        assert_eq!(got[0].uncertainty_nm, 8.5);
    }

    #[test]
    fn bad_tables_say_what_is_wrong() {
        let e = read_csv(
            "\"id\",\"frame\",\"x [px]\",\"y [px]\"\n1,1,2,3\n".as_bytes(),
            "a.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lacks the column(s) \"x [nm]\", \"y [nm]\""),
            "{e}"
        );
        let e = read_csv("".as_bytes(), "b.csv").unwrap_err().to_string();
        assert!(e.contains("b.csv is empty"), "{e}");
        let e = read_csv("frame,x [nm],y [nm]\n1,abc,3\n".as_bytes(), "c.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("\"abc\""), "{e}");
    }
}
