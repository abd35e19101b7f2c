//! Tests of TIFF reading and writing: round trips through our writer and files made with the
//! `tiff` crate's encoder (as other software writes them).

use super::*;
use crate::{Volume, VoxelSize};
use ::tiff::encoder::{colortype, compression, Rational, TiffEncoder};
use ::tiff::tags::{ResolutionUnit, Tag};
use std::fs::File;
use std::path::PathBuf;

/// A fresh temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("fluorecon-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn message(r: Result<Hyperstack>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn sample_stack() -> Hyperstack {
    let voxel = VoxelSize {
        z: 0.3,
        y: 0.065,
        x: 0.0645,
    };
    let mut h = Hyperstack::zeros(5, 4, 2, 3, 2, voxel, "micron");
    for (i, v) in h.data.iter_mut().enumerate() {
        *v = i as f32 * 0.5 - 3.0;
    }
    h.frame_interval = Some(2.5);
    h
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

#[test]
fn hyperstack_round_trip_keeps_dims_values_and_calibration() {
    let dir = TempDir::new("roundtrip");
    let p = dir.join("hs.tif");
    let h = sample_stack();
    write_tiff(&p, &h).unwrap();
    let r = read_tiff(&p).unwrap();
    assert_eq!(
        (r.width, r.height, r.channels, r.slices, r.frames),
        (5, 4, 2, 3, 2)
    );
    assert_eq!(r.data, h.data);
    assert_eq!(r.unit, "micron");
    assert_eq!(r.bit_depth, 32);
    assert_eq!(r.frame_interval, Some(2.5));
    assert!(close(r.voxel.x, 0.0645), "{:?}", r.voxel);
    assert!(close(r.voxel.y, 0.065), "{:?}", r.voxel);
    assert!(close(r.voxel.z, 0.3), "{:?}", r.voxel);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn volume_and_set_volume_address_imagej_order() {
    let mut h = sample_stack();
    let v = h.volume(1, 1);
    assert_eq!(v.shape(), (3, 4, 5));
    assert_eq!(v.voxel, h.voxel);
    // Plane (c=1, z=2, t=1) is plane 1 + 2·(2 + 3·1) = 11 in ImageJ order.
    assert_eq!(v.data[[2, 0, 0]], h.data[11 * 20]);
    assert_eq!(v.data[[2, 3, 4]], h.data[11 * 20 + 19]);

    let mut w = v.clone();
    w.data.fill(7.0);
    w.voxel.z = 0.5;
    h.set_volume(0, 1, &w).unwrap();
    assert_eq!(h.volume(0, 1).data, w.data);
    assert_eq!(h.voxel.z, 0.5);
    assert_eq!(h.volume(1, 1).data, v.data, "other channels untouched");
    assert!(h.set_volume(2, 0, &w).is_err());
    let small = Volume::from_vec(vec![0.0; 6], (1, 2, 3), w.voxel).unwrap();
    assert!(h.set_volume(0, 0, &small).is_err());

    let from = Hyperstack::from_volume(&v);
    assert_eq!((from.channels, from.slices, from.frames), (1, 3, 1));
    assert_eq!(from.volume(0, 0), v);
}

#[test]
fn reads_8bit_imagej_hyperstack_with_nm_calibration() {
    let dir = TempDir::new("u8");
    let p = dir.join("u8.tif");
    let (w, h) = (6u32, 3u32);
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        for page in 0..6u8 {
            let mut img = enc.new_image::<colortype::Gray8>(w, h).unwrap();
            img.resolution(ResolutionUnit::None, Rational { n: 1, d: 100 });
            if page == 0 {
                img.encoder()
                    .write_tag(
                        Tag::ImageDescription,
                        "ImageJ=1.54f\nimages=6\nchannels=2\nslices=3\nhyperstack=true\n\
                         unit=nm\nspacing=200\n",
                    )
                    .unwrap();
            }
            let data: Vec<u8> = (0..w * h).map(|i| page * 40 + i as u8).collect();
            img.write_data(&data).unwrap();
        }
    }
    let r = read_tiff(&p).unwrap();
    assert_eq!(
        (r.width, r.height, r.channels, r.slices, r.frames),
        (6, 3, 2, 3, 1)
    );
    assert_eq!(r.bit_depth, 8);
    assert_eq!(r.unit, "micron");
    assert!(
        close(r.voxel.x, 0.1) && close(r.voxel.z, 0.2),
        "{:?}",
        r.voxel
    );
    assert_eq!(r.data[5 * 18 + 17], 5.0 * 40.0 + 17.0);
    // Channel 1, slice 2 is page 1 + 2·2 = 5.
    assert_eq!(r.volume(1, 0).data[[2, 0, 0]], 200.0);
}

#[test]
fn reads_16bit_lzw_stack_without_imagej_metadata() {
    let dir = TempDir::new("u16");
    let p = dir.join("u16.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        for page in 0..4u16 {
            let data: Vec<u16> = (0..35u16).map(|i| 65535 - page * 1000 - i).collect();
            enc.write_image_with_compression::<colortype::Gray16, _>(7, 5, compression::Lzw, &data)
                .unwrap();
        }
    }
    let r = read_tiff(&p).unwrap();
    assert_eq!((r.channels, r.slices, r.frames), (1, 4, 1));
    assert_eq!((r.width, r.height, r.bit_depth), (7, 5, 16));
    assert_eq!(r.unit, "pixel");
    assert_eq!(r.voxel, VoxelSize::default());
    assert_eq!(r.data[0], 65535.0);
    assert_eq!(r.data[3 * 35 + 34], (65535 - 3000 - 34) as f32);
}

#[test]
fn reads_deflate_float_and_signed_pages_with_cm_resolution() {
    let dir = TempDir::new("f32");
    let p = dir.join("f32.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        let mut img = enc
            .new_image_with_compression::<colortype::Gray32Float, _>(
                4,
                2,
                compression::Deflate::default(),
            )
            .unwrap();
        // 10⁵ pixels per cm = 0.1 µm pixels.
        img.resolution(ResolutionUnit::Centimeter, Rational { n: 100_000, d: 1 });
        img.write_data(&[1.5, -2.0, 3.25, 0.0, 1e6, 7.0, 8.0, 9.0])
            .unwrap();
    }
    let r = read_tiff(&p).unwrap();
    assert_eq!((r.slices, r.bit_depth), (1, 32));
    assert_eq!(r.data, vec![1.5, -2.0, 3.25, 0.0, 1e6, 7.0, 8.0, 9.0]);
    assert_eq!(r.unit, "micron");
    assert!(close(r.voxel.x, 0.1), "{:?}", r.voxel);

    let p = dir.join("i16.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        enc.write_image::<colortype::GrayI16>(2, 1, &[-300, 300])
            .unwrap();
    }
    assert_eq!(read_tiff(&p).unwrap().data, vec![-300.0, 300.0]);
}

#[test]
fn reads_imagej_big_stack_with_a_single_ifd() {
    let dir = TempDir::new("big");
    let p = dir.join("big.tif");
    let h = sample_stack();
    write_tiff(&p, &h).unwrap();
    // Cut the IFD chain after the first IFD, as ImageJ writes stacks over 4 GiB.
    let mut bytes = std::fs::read(&p).unwrap();
    let count = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let next = 8 + 2 + 12 * count;
    bytes[next..next + 4].copy_from_slice(&[0; 4]);
    std::fs::write(&p, &bytes).unwrap();
    let r = read_tiff(&p).unwrap();
    assert_eq!((r.channels, r.slices, r.frames), (2, 3, 2));
    assert_eq!(r.data, h.data);
}

#[test]
fn reads_8bit_images_with_a_colour_table() {
    let dir = TempDir::new("palette");
    let p = dir.join("lut.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        let mut img = enc.new_image::<colortype::Gray8>(3, 2).unwrap();
        img.encoder()
            .write_tag(Tag::PhotometricInterpretation, 3u16)
            .unwrap();
        let map: Vec<u16> = (0..768).map(|i| (i % 256 * 257) as u16).collect();
        img.encoder().write_tag(Tag::ColorMap, &map[..]).unwrap();
        img.write_data(&[0, 1, 2, 100, 200, 255]).unwrap();
    }
    let r = read_tiff(&p).unwrap();
    assert_eq!(r.data, vec![0.0, 1.0, 2.0, 100.0, 200.0, 255.0]);
}

#[test]
fn rgb_is_rejected_with_advice() {
    let dir = TempDir::new("rgb");
    let p = dir.join("rgb.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        enc.write_image::<colortype::RGB8>(2, 2, &[0u8; 12])
            .unwrap();
    }
    let m = message(read_tiff(&p));
    assert!(m.contains("RGB TIFF is not supported"), "{m}");
    assert!(m.contains("rgb.tif"), "{m}");
}

#[test]
fn pages_of_different_size_are_rejected() {
    let dir = TempDir::new("mixed");
    let p = dir.join("mixed.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        enc.write_image::<colortype::Gray8>(2, 2, &[0u8; 4])
            .unwrap();
        enc.write_image::<colortype::Gray8>(3, 2, &[0u8; 6])
            .unwrap();
    }
    let m = message(read_tiff(&p));
    assert!(m.contains("same size"), "{m}");
}

#[test]
fn corrupt_truncated_and_missing_files_give_errors() {
    let dir = TempDir::new("corrupt");
    let p = dir.join("cut.tif");
    write_tiff(&p, &sample_stack()).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    // The pixel data ends where the 11 later IFDs (190 bytes each) begin.
    let data_end = bytes.len() - 11 * 190;
    for keep in [4, 20, 300, bytes.len() / 2, data_end - 10, data_end + 100] {
        std::fs::write(&p, &bytes[..keep]).unwrap();
        let m = message(read_tiff(&p));
        assert!(m.contains("cut.tif"), "{keep}: {m}");
    }
    // Random bytes after a valid header.
    let mut junk = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    junk.extend((0..500u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&p, &junk).unwrap();
    let _ = message(read_tiff(&p));

    std::fs::write(&p, b"This is not a TIFF file at all.").unwrap();
    let m = message(read_tiff(&p));
    assert!(m.contains("not a TIFF"), "{m}");

    let m = message(read_tiff(&dir.join("missing.tif")));
    assert!(m.contains("missing.tif") && m.contains("not found"), "{m}");
}

#[test]
fn write_errors_leave_no_file() {
    let dir = TempDir::new("write");
    let bad = dir.join("no-such-folder").join("out.tif");
    let e = write_tiff(&bad, &sample_stack()).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");

    struct CancelAfter(usize);
    impl Progress for CancelAfter {
        fn cancelled(&mut self) -> bool {
            self.0 = self.0.saturating_sub(1);
            self.0 == 0
        }
    }
    let out = dir.join("out.tif");
    let r = write_tiff_with_progress(&out, &sample_stack(), &mut CancelAfter(3));
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "nothing written"
    );

    let mut wrong = sample_stack();
    wrong.data.pop();
    assert!(write_tiff(&out, &wrong).is_err());
}

/// A TIFF whose ImageJ description claims 15 images in 14 pages made the reader invent a
/// 15th plane from the bytes after the last one (IFDs and tags): refused now, naming both.
#[test]
fn description_claiming_more_images_than_pages_is_refused() {
    let dir = TempDir::new("claims");
    let p = dir.join("claims.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        for page in 0..14u8 {
            let mut img = enc.new_image::<colortype::Gray8>(4, 4).unwrap();
            if page == 0 {
                img.encoder()
                    .write_tag(
                        Tag::ImageDescription,
                        "ImageJ=1.54f\nimages=15\nslices=15\n",
                    )
                    .unwrap();
            }
            img.write_data(&[page; 16]).unwrap();
        }
    }
    let m = message(read_tiff(&p));
    assert!(m.contains("15 images") && m.contains("14 pages"), "{m}");
}

/// Counts whose product overflows once divided by zero in the description parser (a panic
/// the reader caught, with its panic text): read as a plain stack now.
#[test]
fn description_with_overflowing_counts_reads_as_a_plain_stack() {
    let dir = TempDir::new("overflow");
    let p = dir.join("overflow.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        for page in 0..4u8 {
            let mut img = enc.new_image::<colortype::Gray8>(3, 2).unwrap();
            if page == 0 {
                img.encoder()
                    .write_tag(
                        Tag::ImageDescription,
                        "ImageJ=1.54f\nimages=4\nchannels=4294967296\nframes=4294967296\n",
                    )
                    .unwrap();
            }
            img.write_data(&[page; 6]).unwrap();
        }
    }
    let r = read_tiff(&p).unwrap();
    assert_eq!((r.channels, r.slices, r.frames), (1, 4, 1));
    assert_eq!(r.data[6 * 3], 3.0);
}

/// Header values that ask for more than the file holds (a strip byte count of 2 GiB, a tag
/// with 2³¹ values, as in the 666-byte file that made the CLI allocate 32 GiB) are refused
/// before anything that size is allocated.
#[test]
fn header_sizes_beyond_the_file_are_refused() {
    let dir = TempDir::new("sizes");
    let p = dir.join("sizes.tif");
    {
        let mut enc = TiffEncoder::new(File::create(&p).unwrap()).unwrap();
        let mut img = enc
            .new_image_with_compression::<colortype::Gray16, _>(
                8,
                8,
                compression::Deflate::default(),
            )
            .unwrap();
        img.resolution(ResolutionUnit::Centimeter, Rational { n: 20000, d: 1 });
        img.write_data(&[7u16; 64]).unwrap();
    }
    let bytes = std::fs::read(&p).unwrap();
    let ifd = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let entries = u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]) as usize;
    let entry = |tag: u16| {
        (0..entries)
            .map(|k| ifd + 2 + 12 * k)
            .find(|&at| u16::from_le_bytes([bytes[at], bytes[at + 1]]) == tag)
            .expect("tag present")
    };
    let patched = |tag: u16, field: usize, value: u32| {
        let mut b = bytes.clone();
        let at = entry(tag) + field;
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        std::fs::write(&p, &b).unwrap();
    };
    assert!(close(read_tiff(&p).unwrap().voxel.x, 0.5));
    // StripByteCounts (279) → 2 GiB: the pixels cannot be read.
    patched(279, 8, 0x7FFF_FFF0);
    let m = message(read_tiff(&p));
    assert!(m.contains("sizes.tif") && m.contains("corrupt"), "{m}");
    // XResolution (282) with 2³¹ values: the calibration is unusable, the pixels are fine.
    patched(282, 4, 0x8000_0000);
    let r = read_tiff(&p).unwrap();
    assert_eq!((r.unit.as_str(), r.data[0]), ("pixel", 7.0));
}
