//! ImageJ's TIFF conventions: the `ImageDescription` text (`ImageJ=1.x\nimages=…\nchannels=…`),
//! length units and the rational X/YResolution that carries the pixel size.

/// What ImageJ writes into the first page's `ImageDescription`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Description {
    pub images: Option<usize>,
    pub channels: Option<usize>,
    pub slices: Option<usize>,
    pub frames: Option<usize>,
    /// Length unit as written ("micron", "nm", "\u00B5m"…).
    pub unit: Option<String>,
    /// Plane spacing in `unit`s.
    pub spacing: Option<f64>,
    /// Frame interval, seconds.
    pub finterval: Option<f64>,
}

impl Description {
    /// Parses an ImageJ description; `None` when the text was not written by ImageJ
    /// (or a writer imitating it, such as tifffile).
    pub fn parse(text: &str) -> Option<Description> {
        let text = text.trim_start();
        if !text.starts_with("ImageJ=") {
            return None;
        }
        let mut d = Description::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_end_matches('\0');
            let count = || value.parse::<usize>().ok().filter(|&n| n > 0);
            let real = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
            };
            match key.trim() {
                "images" => d.images = count(),
                "channels" => d.channels = count(),
                "slices" => d.slices = count(),
                "frames" => d.frames = count(),
                "unit" => d.unit = Some(unescape(value)).filter(|u| !u.is_empty()),
                "spacing" => d.spacing = real(),
                "finterval" => d.finterval = real(),
                _ => {}
            }
        }
        Some(d)
    }

    /// (channels, slices, frames) for a file of `planes` planes, ImageJ's way: the
    /// description's dimensions when they multiply to `planes`, else a plain z-stack. Counts
    /// whose product overflows are treated like any other inconsistent description.
    pub fn dims(&self, planes: usize) -> (usize, usize, usize) {
        let c = self.channels.unwrap_or(1);
        let t = self.frames.unwrap_or(1);
        let Some(ct) = c.checked_mul(t) else {
            return (1, planes, 1);
        };
        let z = self
            .slices
            .unwrap_or_else(|| if planes % ct == 0 { planes / ct } else { 1 });
        if ct.checked_mul(z) == Some(planes) {
            (c, z, t)
        } else {
            (1, planes, 1)
        }
    }
}

/// What [`format_description`] writes.
pub(crate) struct DescriptionOut<'a> {
    pub channels: usize,
    pub slices: usize,
    pub frames: usize,
    pub unit: &'a str,
    pub spacing: f64,
    pub finterval: Option<f64>,
    pub min: f64,
    pub max: f64,
}

/// The ImageJ description of a 32-bit hyperstack, as ImageJ 1.x writes it.
pub(crate) fn format_description(d: &DescriptionOut) -> String {
    let images = d.channels * d.slices * d.frames;
    let mut s = String::from("ImageJ=1.54f\n");
    if images > 1 {
        s += &format!("images={images}\n");
    }
    if d.channels > 1 {
        s += &format!("channels={}\n", d.channels);
    }
    if d.slices > 1 {
        s += &format!("slices={}\n", d.slices);
    }
    if d.frames > 1 {
        s += &format!("frames={}\n", d.frames);
    }
    if d.channels > 1 || d.frames > 1 {
        s += "hyperstack=true\n";
    }
    if d.channels > 1 {
        s += "mode=grayscale\n";
    }
    if !is_uncalibrated(d.unit) {
        s += &format!("unit={}\n", escape(d.unit));
    }
    if let Some(f) = d.finterval {
        s += &format!("finterval={f}\n");
    }
    if d.spacing.is_finite() && d.spacing > 0.0 {
        s += &format!("spacing={}\n", d.spacing);
    }
    if images > 1 {
        s += "loop=false\n";
    }
    s += &format!("min={}\nmax={}\n", d.min, d.max);
    s
}

/// How many µm one `unit` is, and the name Fluorecon uses for it: µm spellings become
/// "micron" (factor 1), nm becomes "micron" with factor 0.001. `None` for other units.
pub(crate) fn micron_factor(unit: &str) -> Option<f64> {
    let u = unit.trim().to_ascii_lowercase();
    match u.as_str() {
        "micron" | "microns" | "um" | "\u{b5}m" | "\u{3bc}m" | "micrometer" | "micrometers"
        | "micrometre" | "micrometres" => Some(1.0),
        "nm" | "nanometer" | "nanometers" | "nanometre" | "nanometres" => Some(1e-3),
        _ => None,
    }
}

/// True for the units ImageJ uses on uncalibrated images.
pub(crate) fn is_uncalibrated(unit: &str) -> bool {
    matches!(unit.trim(), "" | "pixel" | "pixels")
}

/// ImageJ writes non-ASCII characters in descriptions as `\uXXXX`.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("\\u") {
        out += &rest[..i];
        let code = rest
            .get(i + 2..i + 6)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 6..];
            }
            None => {
                out += "\\u";
                rest = &rest[i + 2..];
            }
        }
    }
    out + rest
}

fn escape(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c.to_string()
            } else {
                format!("\\u{:04X}", c as u32)
            }
        })
        .collect()
}

/// The closest fraction n/d to `x > 0` with n, d < 2³² (continued fractions), for TIFF's
/// RATIONAL X/YResolution. Returns (1, 1) for unusable values.
pub(crate) fn rational(x: f64) -> (u32, u32) {
    if !x.is_finite() || x <= 0.0 {
        return (1, 1);
    }
    let max = u32::MAX as f64;
    if x >= max {
        return (u32::MAX, 1);
    }
    // Convergents h/k of the continued fraction of x.
    let (mut h0, mut h1) = (0.0f64, 1.0f64);
    let (mut k0, mut k1) = (1.0f64, 0.0f64);
    let mut r = x;
    let mut best = (0.0, 1.0);
    for _ in 0..40 {
        let a = r.floor();
        let h2 = a * h1 + h0;
        let k2 = a * k1 + k0;
        if h2 > max || k2 > max {
            break;
        }
        best = (h2, k2);
        (h0, h1, k0, k1) = (h1, h2, k1, k2);
        let frac = r - a;
        if frac < 1e-12 || (h2 / k2 - x).abs() <= x * 1e-15 {
            break;
        }
        r = 1.0 / frac;
    }
    if best.0 < 1.0 {
        // x < 1/u32::MAX: the smallest representable value.
        return (1, u32::MAX);
    }
    (best.0 as u32, best.1 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hyperstack_description() {
        let d = Description::parse(
            "ImageJ=1.54f\nimages=12\nchannels=2\nslices=3\nframes=2\nhyperstack=true\n\
             unit=\\u00B5m\nspacing=0.2\nfinterval=1.5\nloop=false\n",
        )
        .unwrap();
        assert_eq!(d.images, Some(12));
        assert_eq!(d.dims(12), (2, 3, 2));
        assert_eq!(d.unit.as_deref(), Some("\u{b5}m"));
        assert_eq!(micron_factor(d.unit.as_deref().unwrap()), Some(1.0));
        assert_eq!(d.spacing, Some(0.2));
        assert_eq!(d.finterval, Some(1.5));
        // Inconsistent dimensions: a plain stack, as ImageJ does.
        assert_eq!(d.dims(10), (1, 10, 1));
        // Missing slices are inferred.
        let d = Description::parse("ImageJ=1.54f\nimages=8\nchannels=2\n").unwrap();
        assert_eq!(d.dims(8), (2, 4, 1));
        assert!(Description::parse("Created by some camera").is_none());
    }

    /// Counts whose product overflows (2³² · 2³² wraps to 0 on 64-bit) once made the
    /// remainder below divide by zero.
    #[test]
    fn overflowing_counts_give_a_plain_stack() {
        let d =
            Description::parse("ImageJ=1.54f\nimages=4\nchannels=4294967296\nframes=4294967296\n")
                .unwrap();
        assert_eq!(d.dims(4), (1, 4, 1));
        let d = Description::parse(&format!(
            "ImageJ=1.54f\nimages=4\nchannels=2\nslices={}\nframes=2\n",
            usize::MAX / 2 + 2
        ))
        .unwrap();
        assert_eq!(d.dims(4), (1, 4, 1));
    }

    #[test]
    fn description_round_trip() {
        let s = format_description(&DescriptionOut {
            channels: 2,
            slices: 3,
            frames: 2,
            unit: "\u{b5}m",
            spacing: 0.25,
            finterval: None,
            min: 0.0,
            max: 10.5,
        });
        assert!(s.contains("unit=\\u00B5m\n"));
        let d = Description::parse(&s).unwrap();
        assert_eq!(d.dims(12), (2, 3, 2));
        assert_eq!(d.spacing, Some(0.25));
        assert_eq!(micron_factor(d.unit.as_deref().unwrap()), Some(1.0));
    }

    #[test]
    fn rationals_are_close() {
        for x in [
            10.0,
            1.0 / 0.065,
            1.0 / 0.1032,
            15.3846,
            1e-6,
            123456.789,
            1.0 / 3.0,
        ] {
            let (n, d) = rational(x);
            let y = n as f64 / d as f64;
            assert!((y - x).abs() <= x * 1e-9, "{x} -> {n}/{d}");
        }
        assert_eq!(rational(1.0 / 0.065), (200, 13));
    }
}
