/* A stand-in for Windows' bcryptprimitives.dll, for Wine versions that lack it
 * (Debian 12's Wine 8.0 does).
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from
 * bcryptprimitives.dll for its random numbers (HashMap seeds); Windows 10 and
 * later have it. Without the DLL no Rust program starts under such a Wine
 * (status c0000135). `cargo xtask ci` builds this with MinGW-w64 into the Wine
 * prefix it runs the Windows build in; nothing of it ships.
 *
 * ProcessPrng fills `data` with `len` random bytes and always succeeds on
 * Windows; here it asks bcrypt.dll's system RNG, which Wine implements. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
