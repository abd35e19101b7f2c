//! JNI bridge (being written).
