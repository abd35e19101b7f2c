//! The few cuFFT functions Richardson–Lucy (3D real transforms) and SIM (2D complex
//! transforms) need, opened at run time with `dlopen` (cudarc 0.17
//! has no cuFFT bindings): the CUDA build then starts, and reports why, on a machine without
//! libcufft. Plans are owned values destroyed on drop; transforms take device buffers whose
//! lengths are checked against the plan, so the wrapper is safe to call.

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DevicePtrMut};
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// The cuFFT library of the CUDA 12 and 13 runtimes.
pub const CUFFT_LIBRARY: &str = "libcufft.so.12";

type CufftHandle = c_int;
type CufftResult = c_int;
/// `cufftType` values.
const CUFFT_R2C: c_int = 0x2a;
const CUFFT_C2R: c_int = 0x2c;
const CUFFT_C2C: c_int = 0x29;
/// Signs of the exponent of `cufftExecC2C`.
const CUFFT_FORWARD: c_int = -1;
const CUFFT_INVERSE: c_int = 1;

type PlanManyFn = unsafe extern "C" fn(
    *mut CufftHandle,
    c_int,
    *mut c_int,
    *mut c_int,
    c_int,
    c_int,
    *mut c_int,
    c_int,
    c_int,
    c_int,
    c_int,
) -> CufftResult;
type ExecR2cFn = unsafe extern "C" fn(CufftHandle, *mut f32, *mut c_void) -> CufftResult;
type ExecC2rFn = unsafe extern "C" fn(CufftHandle, *mut c_void, *mut f32) -> CufftResult;
type ExecC2cFn = unsafe extern "C" fn(CufftHandle, *mut c_void, *mut c_void, c_int) -> CufftResult;
type SetStreamFn = unsafe extern "C" fn(CufftHandle, *mut c_void) -> CufftResult;
type DestroyFn = unsafe extern "C" fn(CufftHandle) -> CufftResult;
type GetVersionFn = unsafe extern "C" fn(*mut c_int) -> CufftResult;

struct Library {
    plan_many: PlanManyFn,
    exec_r2c: ExecR2cFn,
    exec_c2r: ExecC2rFn,
    exec_c2c: ExecC2cFn,
    set_stream: SetStreamFn,
    destroy: DestroyFn,
    get_version: GetVersionFn,
}

/// libcufft, opened once per process; Err says why it cannot be used.
fn library() -> Result<&'static Library, String> {
    static LIB: OnceLock<Result<Library, String>> = OnceLock::new();
    LIB.get_or_init(open).as_ref().map_err(Clone::clone)
}

fn open() -> Result<Library, String> {
    let name = format!("{CUFFT_LIBRARY}\0");
    // SAFETY: a NUL-terminated name; the handle is kept for the life of the process.
    let handle = unsafe { libc::dlopen(name.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a NUL-terminated message or null.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "not found".to_string()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(format!(
            "cuFFT ({CUFFT_LIBRARY}) could not be opened: {why}; install the CUDA runtime \
             libraries (e.g. the nvidia-cufft wheel) and put them on LD_LIBRARY_PATH"
        ));
    }
    let symbol = |s: &str| -> Result<*mut c_void, String> {
        let c = format!("{s}\0");
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, c.as_ptr().cast()) };
        if p.is_null() {
            Err(format!("{CUFFT_LIBRARY} has no function {s}"))
        } else {
            Ok(p)
        }
    };
    // SAFETY: the symbols are cuFFT's C functions with these signatures (cufft.h).
    unsafe {
        Ok(Library {
            plan_many: std::mem::transmute::<*mut c_void, PlanManyFn>(symbol("cufftPlanMany")?),
            exec_r2c: std::mem::transmute::<*mut c_void, ExecR2cFn>(symbol("cufftExecR2C")?),
            exec_c2r: std::mem::transmute::<*mut c_void, ExecC2rFn>(symbol("cufftExecC2R")?),
            exec_c2c: std::mem::transmute::<*mut c_void, ExecC2cFn>(symbol("cufftExecC2C")?),
            set_stream: std::mem::transmute::<*mut c_void, SetStreamFn>(symbol("cufftSetStream")?),
            destroy: std::mem::transmute::<*mut c_void, DestroyFn>(symbol("cufftDestroy")?),
            get_version: std::mem::transmute::<*mut c_void, GetVersionFn>(symbol(
                "cufftGetVersion",
            )?),
        })
    }
}

/// cuFFT's version (e.g. 12000 for cuFFT 12.0), or why the library cannot be used.
pub fn version() -> Result<i32, String> {
    let lib = library()?;
    let mut v = 0;
    // SAFETY: writes one int.
    check("cufftGetVersion", unsafe { (lib.get_version)(&mut v) })?;
    Ok(v)
}

fn check(what: &str, r: CufftResult) -> Result<(), String> {
    const NAMES: [&str; 17] = [
        "CUFFT_SUCCESS",
        "CUFFT_INVALID_PLAN",
        "CUFFT_ALLOC_FAILED (out of GPU memory)",
        "CUFFT_INVALID_TYPE",
        "CUFFT_INVALID_VALUE",
        "CUFFT_INTERNAL_ERROR",
        "CUFFT_EXEC_FAILED",
        "CUFFT_SETUP_FAILED",
        "CUFFT_INVALID_SIZE",
        "CUFFT_UNALIGNED_DATA",
        "CUFFT_INCOMPLETE_PARAMETER_LIST",
        "CUFFT_INVALID_DEVICE",
        "CUFFT_PARSE_ERROR",
        "CUFFT_NO_WORKSPACE",
        "CUFFT_NOT_IMPLEMENTED",
        "CUFFT_LICENSE_ERROR",
        "CUFFT_NOT_SUPPORTED",
    ];
    if r == 0 {
        return Ok(());
    }
    let name = usize::try_from(r)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown cuFFT error");
    Err(format!("{what} failed: {name} ({r})"))
}

/// Which way a plan transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Real volume → half spectrum (unnormalised).
    RealToComplex,
    /// Half spectrum → real volume (unnormalised: n·x after a forward transform).
    ComplexToReal,
}

/// A cuFFT plan handle on a stream, destroyed on drop.
struct Handle {
    lib: &'static Library,
    handle: CufftHandle,
}

impl Handle {
    /// Plans a transform of `kind` over `dims` (slowest first, packed layout) on the current
    /// CUDA context, queued on `stream`.
    fn new(dims: &[usize], kind: c_int, stream: &CudaStream) -> Result<Handle, String> {
        let lib = library()?;
        let mut dims: Vec<c_int> = dims
            .iter()
            .map(|&d| c_int::try_from(d).map_err(|_| format!("FFT size {d} is too large")))
            .collect::<Result<_, _>>()?;
        let mut handle: CufftHandle = 0;
        // SAFETY: `dims` outlives the call; null embeddings mean the default (packed) layout.
        check("cufftPlanMany", unsafe {
            (lib.plan_many)(
                &mut handle,
                dims.len() as c_int,
                dims.as_mut_ptr(),
                std::ptr::null_mut(),
                1,
                0,
                std::ptr::null_mut(),
                1,
                0,
                kind,
                1,
            )
        })?;
        let plan = Handle { lib, handle };
        // SAFETY: a valid plan; the stream outlives every transform queued on it (the caller
        // keeps both together).
        check("cufftSetStream", unsafe {
            (lib.set_stream)(handle, stream.cu_stream() as *mut c_void)
        })?;
        Ok(plan)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is valid and destroyed once.
        unsafe { (self.lib.destroy)(self.handle) };
    }
}

/// A cuFFT plan for real volumes of one shape (nz, ny, nx), x fastest, in the layout of
/// [`crate::fft::Fft3`]: the half spectrum is (nz, ny, nx/2 + 1) complex values.
pub struct Plan {
    handle: Handle,
    direction: Direction,
    real_len: usize,
    /// Complex values of the half spectrum.
    spectrum_len: usize,
}

impl Plan {
    /// Plans the transform on the current CUDA context (bind it to the thread first), queued on
    /// `stream`. Axes of length 1 are dropped (a single plane is a 2D transform).
    pub fn new(
        shape: (usize, usize, usize),
        direction: Direction,
        stream: &CudaStream,
    ) -> Result<Plan, String> {
        let (nz, ny, nx) = shape;
        let mut dims: Vec<usize> = [nz, ny, nx].into_iter().skip_while(|&d| d == 1).collect();
        if dims.is_empty() {
            dims.push(1);
        }
        let kind = match direction {
            Direction::RealToComplex => CUFFT_R2C,
            Direction::ComplexToReal => CUFFT_C2R,
        };
        Ok(Plan {
            handle: Handle::new(&dims, kind, stream)?,
            direction,
            real_len: nz * ny * nx,
            spectrum_len: nz * ny * (nx / 2 + 1),
        })
    }

    /// Real → half spectrum: `spectrum` holds 2 floats (re, im) per complex value.
    pub fn forward(
        &self,
        stream: &CudaStream,
        real: &CudaSlice<f32>,
        spectrum: &mut CudaSlice<f32>,
    ) -> Result<(), String> {
        self.check_buffers(Direction::RealToComplex, real.len(), spectrum.len())?;
        let (input, _r) = real.device_ptr(stream);
        let (output, _w) = spectrum.device_ptr_mut(stream);
        // SAFETY: lengths checked against the plan; cuFFT reads `input` only (out of place).
        check("cufftExecR2C", unsafe {
            (self.handle.lib.exec_r2c)(self.handle.handle, input as *mut f32, output as *mut c_void)
        })
    }

    /// Half spectrum (overwritten: cuFFT uses it as scratch) → real, unnormalised.
    pub fn inverse(
        &self,
        stream: &CudaStream,
        spectrum: &mut CudaSlice<f32>,
        real: &mut CudaSlice<f32>,
    ) -> Result<(), String> {
        self.check_buffers(Direction::ComplexToReal, real.len(), spectrum.len())?;
        let (input, _r) = spectrum.device_ptr_mut(stream);
        let (output, _w) = real.device_ptr_mut(stream);
        // SAFETY: lengths checked against the plan.
        check("cufftExecC2R", unsafe {
            (self.handle.lib.exec_c2r)(self.handle.handle, input as *mut c_void, output as *mut f32)
        })
    }

    fn check_buffers(
        &self,
        direction: Direction,
        real: usize,
        floats: usize,
    ) -> Result<(), String> {
        if direction != self.direction {
            return Err(format!(
                "a {:?} cuFFT plan used for {direction:?}",
                self.direction
            ));
        }
        if real != self.real_len || floats != 2 * self.spectrum_len {
            return Err(format!(
                "cuFFT buffers of {real} reals and {floats} floats for a plan of {} reals and {} \
                 complex values",
                self.real_len, self.spectrum_len
            ));
        }
        Ok(())
    }
}

/// A cuFFT plan for complex 2D images of one shape (ny, nx), x fastest, interleaved (re, im)
/// floats, transformed in place in both directions; both unnormalised (the inverse gives
/// ny·nx·x after a forward transform), with the signs of [`crate::fft::Fft2`].
pub struct ComplexPlan {
    handle: Handle,
    /// Complex values of an image.
    len: usize,
}

impl ComplexPlan {
    /// Plans the transform on the current CUDA context (bind it to the thread first), queued on
    /// `stream`.
    pub fn new((ny, nx): (usize, usize), stream: &CudaStream) -> Result<ComplexPlan, String> {
        Ok(ComplexPlan {
            handle: Handle::new(&[ny, nx], CUFFT_C2C, stream)?,
            len: ny * nx,
        })
    }

    /// In-place forward transform, e^{−2πi k·x}.
    pub fn forward(&self, stream: &CudaStream, data: &mut CudaSlice<f32>) -> Result<(), String> {
        self.exec(stream, data, CUFFT_FORWARD)
    }

    /// In-place inverse transform, e^{+2πi k·x}, unnormalised.
    pub fn inverse(&self, stream: &CudaStream, data: &mut CudaSlice<f32>) -> Result<(), String> {
        self.exec(stream, data, CUFFT_INVERSE)
    }

    fn exec(
        &self,
        stream: &CudaStream,
        data: &mut CudaSlice<f32>,
        sign: c_int,
    ) -> Result<(), String> {
        if data.len() != 2 * self.len {
            return Err(format!(
                "a cuFFT buffer of {} floats for a plan of {} complex values",
                data.len(),
                self.len
            ));
        }
        let (p, _w) = data.device_ptr_mut(stream);
        // SAFETY: the length is checked against the plan; in place.
        check("cufftExecC2C", unsafe {
            (self.handle.lib.exec_c2c)(self.handle.handle, p as *mut c_void, p as *mut c_void, sign)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where libcufft is present (no GPU needed) it opens and reports cuFFT 11 or newer;
    /// elsewhere the error names the library and what to install.
    #[test]
    fn library_opens_or_says_why() {
        match version() {
            Ok(v) => {
                eprintln!("cuFFT {v} opened");
                assert!(v >= 11000, "cuFFT version {v}")
            }
            Err(why) => {
                eprintln!("library_opens_or_says_why: no cuFFT here: {why}");
                assert!(
                    why.starts_with("cuFFT (libcufft.so.12) could not be opened: "),
                    "{why}"
                );
                assert!(why.contains("LD_LIBRARY_PATH"), "{why}");
            }
        }
    }
}
