//! 2D SIM end to end on simulated data with known pattern and ground truth (seeded): pattern
//! estimation accuracy, image quality against the truth, resolution beyond the widefield
//! cutoff, and the input errors.

use fluorecon::fft::Complex32;
use fluorecon::sim::fft2::Fft2;
use fluorecon::sim::otf::freq;
use fluorecon::sim::{
    reconstruct, simulate_sim, FrameOrder, SimAcquisition, SimData, SimOptics, SimOptions,
    SimResult,
};
use fluorecon::simulate::{phantom, psnr};
use fluorecon::{Error, NoProgress, Progress, Volume};
use ndarray::{s, Array2, Array3, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

const N: usize = 256;

fn truth(seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    phantom((1, N, N), &mut rng)
        .index_axis(Axis(0), 0)
        .to_owned()
}

fn acquisition() -> SimAcquisition {
    SimAcquisition {
        photons: 1000.0,
        background: 100.0,
        read_noise: 2.0,
        seed: 7,
        ..Default::default()
    }
}

fn options() -> SimOptions {
    SimOptions {
        background: 100.0,
        ..Default::default()
    }
}

fn run(data: &SimData) -> SimResult {
    reconstruct(
        &data.raw,
        &SimOptics::default(),
        &options(),
        &mut NoProgress,
    )
    .unwrap()
}

fn wrap(a: f64) -> f64 {
    (a + PI).rem_euclid(2.0 * PI) - PI
}

#[test]
fn estimates_pattern_parameters() {
    // Four phantoms and noise seeds; over 11 seeds the worst errors were 0.021 px, 0.037 rad
    // and 0.022.
    for seed in 1..=4u64 {
        let acq = SimAcquisition {
            seed: seed + 100,
            ..acquisition()
        };
        let data = simulate_sim(&truth(seed), &SimOptics::default(), &acq).unwrap();
        let res = run(&data);
        assert!(res.warnings.is_empty(), "{:?}", res.warnings);
        for (est, t) in res.params.iter().zip(&data.truth) {
            let dk = (est.k0_px[0] - t.k0_px[0]).hypot(est.k0_px[1] - t.k0_px[1]);
            let dphi = wrap(est.phase_rad - t.phase_rad);
            let dm = est.modulation - t.modulation;
            println!(
                "seed {seed}, angle {:.1}°: k0 error {dk:.4} px, phase error {dphi:+.4} rad, \
                 modulation {:.3} (true {:.2}), peak ratio {:.1}",
                t.angle_deg, est.modulation, t.modulation, est.peak_ratio
            );
            assert!(dk < 0.05, "k0 {:?} vs {:?}", est.k0_px, t.k0_px);
            assert!(
                dphi.abs() < 0.05,
                "phase {} vs {}",
                est.phase_rad,
                t.phase_rad
            );
            assert!(
                dm.abs() < 0.05,
                "modulation {} vs {}",
                est.modulation,
                t.modulation
            );
            assert!((est.line_spacing_nm - t.line_spacing_nm).abs() < 1.0);
            assert!(wrap((est.angle_deg - t.angle_deg).to_radians()).abs() < 0.01);
        }
    }
}

/// 2× Fourier downsampling (crop of the spectrum) of a (2n, 2n) image to (n, n).
fn downsample(img: ArrayView2<f32>) -> Array2<f32> {
    let (fy, fx) = img.dim();
    let (ny, nx) = (fy / 2, fx / 2);
    let mut spec: Vec<Complex32> = img.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    Fft2::new(fy, fx).forward(&mut spec);
    let mut out = vec![Complex32::default(); ny * nx];
    for j in 0..ny {
        let sj = if j < ny / 2 { j } else { fy - (ny - j) };
        for i in 0..nx {
            let si = if i < nx / 2 { i } else { fx - (nx - i) };
            out[j * nx + i] = spec[sj * fx + si] / 4.0;
        }
    }
    Fft2::new(ny, nx).inverse(&mut out);
    Array2::from_shape_fn((ny, nx), |(y, x)| out[y * nx + x].re)
}

/// PSNR (dB) against `truth` after the least-squares affine fit a·img + b, over the interior
/// (16 px margin: the edge taper), so that neither image is penalised for its intensity scale.
fn fitted_psnr(img: &Array2<f32>, truth: &Array2<f32>) -> f64 {
    let m = 16;
    let (n, _) = truth.dim();
    let crop = |a: &Array2<f32>| a.slice(s![m..n - m, m..n - m]).to_owned();
    let (e, t) = (crop(img), crop(truth));
    let k = e.len() as f64;
    let (me, mt) = (e.sum() as f64 / k, t.sum() as f64 / k);
    let cov: f64 = e
        .iter()
        .zip(&t)
        .map(|(&a, &b)| (a as f64 - me) * (b as f64 - mt))
        .sum();
    let var: f64 = e.iter().map(|&a| (a as f64 - me).powi(2)).sum();
    let a = cov / var;
    let fit = e.mapv(|v| (a * (v as f64 - me) + mt) as f32);
    psnr(&fit.insert_axis(Axis(0)), &t.insert_axis(Axis(0)), 0)
}

/// Correlation coefficient of the spectra of `img` and `truth` (same size, raw grid) over the
/// frequencies 1.1–1.6 × the widefield cutoff: only content the microscope cannot pass in
/// widefield.
fn spectral_correlation_beyond_cutoff(img: &Array2<f32>, truth: &Array2<f32>) -> f64 {
    let (ny, nx) = truth.dim();
    let fft = Fft2::new(ny, nx);
    let spec = |a: &Array2<f32>| {
        let mut s: Vec<Complex32> = a.iter().map(|&v| Complex32::new(v, 0.0)).collect();
        fft.forward(&mut s);
        s
    };
    let (e, t) = (spec(img), spec(truth));
    let optics = SimOptics::default();
    let (kc, p) = (optics.cutoff_per_um(), optics.pixel_size_um());
    let (mut c, mut ee, mut tt) = (0f64, 0f64, 0f64);
    for j in 0..ny {
        for i in 0..nx {
            let k = freq(i, nx, p).hypot(freq(j, ny, p)) / kc;
            if (1.1..1.6).contains(&k) {
                let (a, b) = (e[j * nx + i], t[j * nx + i]);
                c += (a * b.conj()).re as f64;
                ee += a.norm_sqr() as f64;
                tt += b.norm_sqr() as f64;
            }
        }
    }
    c / (ee * tt).sqrt()
}

#[test]
fn sim_beats_widefield_and_passes_frequencies_beyond_the_cutoff() {
    let object = truth(2);
    let data = simulate_sim(&object, &SimOptics::default(), &acquisition()).unwrap();
    let res = run(&data);
    let sim = downsample(res.sim.data.index_axis(Axis(0), 0));
    let wf = downsample(res.widefield.data.index_axis(Axis(0), 0));
    let wwf = downsample(res.wiener_widefield.data.index_axis(Axis(0), 0));
    let (p_sim, p_wf, p_wwf) = (
        fitted_psnr(&sim, &object),
        fitted_psnr(&wf, &object),
        fitted_psnr(&wwf, &object),
    );
    let (c_sim, c_wf) = (
        spectral_correlation_beyond_cutoff(&sim, &object),
        spectral_correlation_beyond_cutoff(&wf, &object),
    );
    println!("PSNR: SIM {p_sim:.2} dB, widefield {p_wf:.2} dB, Wiener widefield {p_wwf:.2} dB");
    println!("spectral correlation 1.1–1.6 k_c: SIM {c_sim:.3}, widefield {c_wf:.3}");
    assert!(p_sim > p_wf + 2.0 && p_sim > p_wwf + 1.0);
    assert!(c_sim > 0.25 && c_wf.abs() < 0.1);
}

#[test]
fn stack_without_stripes_is_an_error() {
    let acq = SimAcquisition {
        modulation: 0.0,
        ..acquisition()
    };
    let data = simulate_sim(&truth(3), &SimOptics::default(), &acq).unwrap();
    let err = reconstruct(
        &data.raw,
        &SimOptics::default(),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    println!("{err}");
    assert!(err.contains("no stripe pattern"), "{err}");
}

#[test]
fn wrong_frame_count_and_nan_are_errors() {
    let data = simulate_sim(&truth(1), &SimOptics::default(), &acquisition()).unwrap();
    let ten = data.raw.data.slice(s![0..1, .., ..]).to_owned();
    let mut stack = Array3::zeros((10, N, N));
    for f in 0..10 {
        stack
            .index_axis_mut(Axis(0), f)
            .assign(&ten.index_axis(Axis(0), 0));
    }
    let err = reconstruct(
        &Volume::new(stack, data.raw.voxel),
        &SimOptics::default(),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "SIM stack has 10 frames; 3 angles × 3 phases needs a multiple of 9"
    );

    let mut nan = data.raw.clone();
    nan.data[[4, 10, 20]] = f32::NAN;
    let err = reconstruct(&nan, &SimOptics::default(), &options(), &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not numbers") && err.contains("x=20, y=10, z=4"),
        "{err}"
    );

    let small = data.raw.data.slice(s![.., 0..20, 0..40]).to_owned();
    let err = reconstruct(
        &Volume::new(small, data.raw.voxel),
        &SimOptics::default(),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least 32×32"), "{err}");
}

#[test]
fn frame_orders_give_the_same_result() {
    // The PAZ stack reordered as ZAP (angle fastest, then phase, for one plane) and read with
    // that order reconstructs to the same image.
    let data = simulate_sim(&truth(4), &SimOptics::default(), &acquisition()).unwrap();
    let paz = run(&data);
    let mut zap = data.raw.clone();
    for a in 0..3 {
        for p in 0..3 {
            zap.data
                .index_axis_mut(Axis(0), a + 3 * p)
                .assign(&data.raw.data.index_axis(Axis(0), p + 3 * a));
        }
    }
    let opts = SimOptions {
        order: FrameOrder::Zap,
        ..options()
    };
    let res = reconstruct(&zap, &SimOptics::default(), &opts, &mut NoProgress).unwrap();
    assert_eq!(res.sim.data, paz.sim.data);
    assert_eq!(res.sim.shape(), (1, 2 * N, 2 * N));
    assert!((res.sim.voxel.x - 0.04).abs() < 1e-12);
}

#[test]
fn two_lines_closer_than_the_widefield_limit_are_resolved() {
    // Two vertical lines 160 nm apart (2 raw pixels); the widefield limit λ/(2NA) is 219 nm.
    let mut object = Array2::<f32>::zeros((N, N));
    for y in 40..N - 40 {
        object[[y, 127]] = 1.0;
        object[[y, 129]] = 1.0;
    }
    let data = simulate_sim(&object, &SimOptics::default(), &acquisition()).unwrap();
    let res = run(&data);
    // Mean profile over the middle rows, at fine pixels 254 (line), 256 (gap), 258 (line).
    let profile = |v: &Volume| -> [f64; 3] {
        let img = v.data.index_axis(Axis(0), 0);
        let at = |x: usize| (200..312).map(|y| img[[y, x]] as f64).sum::<f64>() / 112.0;
        [at(254), at(256), at(258)]
    };
    let (sim, wf) = (profile(&res.sim), profile(&res.widefield));
    let dip = |p: [f64; 3]| p[1] / p[0].min(p[2]);
    println!(
        "gap/line intensity: SIM {:.2}, widefield {:.2}",
        dip(sim),
        dip(wf)
    );
    assert!(dip(sim) < 0.8, "{sim:?}");
    assert!(dip(wf) > 1.0, "{wf:?}");
}

#[test]
fn low_modulation_falls_back_to_the_default_with_a_warning() {
    let acq = SimAcquisition {
        modulation: 0.3,
        ..acquisition()
    };
    let data = simulate_sim(&truth(5), &SimOptics::default(), &acq).unwrap();
    let res = run(&data);
    assert_eq!(res.warnings.len(), 3, "{:?}", res.warnings);
    assert!(res.warnings[0].contains("modulation") && res.warnings[0].contains("using 0.70"));
    for (est, t) in res.params.iter().zip(&data.truth) {
        println!(
            "m = 0.3: estimated {:.3}, peak ratio {:.1}",
            est.modulation, est.peak_ratio
        );
        assert!(est.flags.low_modulation && !est.flags.no_stripes);
        assert!((est.modulation - 0.3).abs() < 0.05);
        assert_eq!(est.modulation_used, 0.7);
        let dk = (est.k0_px[0] - t.k0_px[0]).hypot(est.k0_px[1] - t.k0_px[1]);
        assert!(dk < 0.1, "{dk}");
    }
}

#[test]
fn planes_are_reconstructed_in_pza_order_and_cancel_stops() {
    // Two planes (the same frames twice) in PZA order: phase, then z, then angle.
    let data = simulate_sim(&truth(6), &SimOptics::default(), &acquisition()).unwrap();
    let mut stack = Array3::zeros((18, N, N));
    for a in 0..3 {
        for z in 0..2 {
            for p in 0..3 {
                stack
                    .index_axis_mut(Axis(0), p + 3 * (z + 2 * a))
                    .assign(&data.raw.data.index_axis(Axis(0), p + 3 * a));
            }
        }
    }
    let raw = Volume::new(stack, data.raw.voxel);
    let opts = SimOptions {
        order: FrameOrder::Pza,
        ..options()
    };
    let res = reconstruct(&raw, &SimOptics::default(), &opts, &mut NoProgress).unwrap();
    assert_eq!(res.sim.shape(), (2, 2 * N, 2 * N));
    assert_eq!(
        res.sim.data.index_axis(Axis(0), 0),
        res.sim.data.index_axis(Axis(0), 1)
    );
    assert!(res.warnings.is_empty(), "{:?}", res.warnings);

    struct CancelAfter(usize);
    impl Progress for CancelAfter {
        fn cancelled(&mut self) -> bool {
            self.0 = self.0.saturating_sub(1);
            self.0 == 0
        }
    }
    let err = reconstruct(&raw, &SimOptics::default(), &opts, &mut CancelAfter(4)).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}
