/* For the checks under Wine only (scripts/check-natives.sh), never shipped: Rust's standard
 * library on Windows takes its random numbers from ProcessPrng in bcryptprimitives.dll, which
 * every Windows 10/11 has and Wine 8 (Debian 12) lacks. This stand-in, put beside the
 * executable, answers it with RtlGenRandom (advapi32's SystemFunction036). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
