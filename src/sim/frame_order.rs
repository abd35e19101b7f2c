//! The frame order of a raw SIM stack, where the frames of each plane are in it, and the
//! check that names the right order when the estimates show the stack is in another.

use super::AngleParams;
use crate::{invalid, Error, Result};

/// Order of the frames in a raw SIM stack (fastest-varying index first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrameOrder {
    /// Phase, then angle, then z (fairSIM default).
    #[default]
    Paz,
    /// Phase, then z, then angle (OMX).
    Pza,
    /// z, then angle, then phase (Zeiss).
    Zap,
}

impl FrameOrder {
    /// Index of the frame of plane `z`, direction `a`, phase `p` in a stack of `nz` planes,
    /// `na` directions and `np` phases.
    pub fn index(self, z: usize, a: usize, p: usize, (nz, na, np): (usize, usize, usize)) -> usize {
        match self {
            FrameOrder::Paz => p + np * (a + na * z),
            FrameOrder::Pza => p + np * (z + nz * a),
            FrameOrder::Zap => z + nz * (a + na * p),
        }
    }

    /// "PAZ", "PZA" or "ZAP".
    pub fn name(self) -> &'static str {
        match self {
            FrameOrder::Paz => "PAZ",
            FrameOrder::Pza => "PZA",
            FrameOrder::Zap => "ZAP",
        }
    }
}

impl std::str::FromStr for FrameOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PAZ" => Ok(FrameOrder::Paz),
            "PZA" => Ok(FrameOrder::Pza),
            "ZAP" => Ok(FrameOrder::Zap),
            _ => invalid!("unknown frame order '{s}': use PAZ, PZA or ZAP"),
        }
    }
}

/// Where the frames of one plane are in the raw stack.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) order: FrameOrder,
    pub(super) planes: usize,
    pub(super) angles: usize,
    pub(super) phases: usize,
}

impl Layout {
    /// Frame of time point t, plane z, direction a, phase p.
    pub(super) fn frame(&self, t: usize, z: usize, a: usize, p: usize) -> usize {
        let block = self.planes * self.angles * self.phases;
        t * block
            + self
                .order
                .index(z, a, p, (self.planes, self.angles, self.phases))
    }
}

/// Estimates that a wrong frame order typically produces: a direction without stripes, an
/// implausible k₀ or modulation, or directions not evenly spaced.
pub(super) fn suspicious(params: &[AngleParams]) -> bool {
    params.iter().any(|p| {
        let f = p.flags;
        f.failed() || f.low_modulation || f.uneven_angles
    })
}

/// Called when the estimates look wrong: if another frame order gives consistent parameters,
/// the stack is in that order and this is an error that names it; if there are no stripes
/// in any order, that is an error too. Otherwise the estimates stand (with warnings).
pub(super) fn check_frame_order(
    params: &[AngleParams],
    layout: &Layout,
    plane: usize,
    estimate: impl Fn(&Layout, usize) -> Vec<AngleParams>,
) -> Result<()> {
    let mapping = |l: &Layout| -> Vec<usize> {
        let (t, z) = (plane / l.planes, plane % l.planes);
        (0..l.angles)
            .flat_map(|a| (0..l.phases).map(move |p| (a, p)))
            .map(|(a, p)| l.frame(t, z, a, p))
            .collect()
    };
    let given = mapping(layout);
    let mut tried = vec![given];
    for order in [FrameOrder::Paz, FrameOrder::Pza, FrameOrder::Zap] {
        let alt = Layout { order, ..*layout };
        let m = mapping(&alt);
        if tried.contains(&m) {
            continue; // same frames as an order already tried (e.g. PAZ and PZA for one plane)
        }
        tried.push(m);
        let alt_params = estimate(&alt, plane);
        if !suspicious(&alt_params) {
            return invalid!(
                "the pattern parameters do not fit frame order {} ({}) but they do fit frame \
                 order {}: the stack is probably in {} order; choose that order",
                layout.order.name(),
                describe(params),
                order.name(),
                order.name()
            );
        }
    }
    if params.iter().all(|p| p.flags.no_stripes) {
        return invalid!(
            "no stripe pattern was found in the SIM stack (correlation peaks {}, in any frame \
             order); check the number of angles and phases, and that this is raw SIM data \
             rather than a widefield or reconstructed image",
            params
                .iter()
                .map(|p| format!("{:.1}", p.peak_ratio))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Short summary of the estimates: direction, modulation and correlation peak per angle.
fn describe(params: &[AngleParams]) -> String {
    params
        .iter()
        .map(|p| {
            format!(
                "{:.1}°, m {:.2}, peak {:.1}",
                p.angle_deg, p.modulation, p.peak_ratio
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_orders_are_permutations() {
        let dims = (2, 3, 5);
        for order in [FrameOrder::Paz, FrameOrder::Pza, FrameOrder::Zap] {
            let mut seen = [false; 30];
            for z in 0..2 {
                for a in 0..3 {
                    for p in 0..5 {
                        seen[order.index(z, a, p, dims)] = true;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s), "{order:?}");
        }
        assert_eq!(FrameOrder::Paz.index(1, 2, 4, dims), 4 + 5 * (2 + 3));
        assert_eq!(FrameOrder::Zap.index(1, 0, 1, dims), 1 + 2 * 3);
    }
}
