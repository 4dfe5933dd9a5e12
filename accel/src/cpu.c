/* Runtime CPU feature detection, NumPy's way: CPUID says what the CPU has, XGETBV(XCR0) says
 * which register state the OS saves on context switch. Compiled with baseline flags. */
#include "velaria_accel.h"

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0)); /* xgetbv */
    return ((uint64_t)edx << 32) | eax;
}

int velaria_cpu_level(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return VELARIA_LEVEL_SCALAR;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx)
        return VELARIA_LEVEL_SCALAR;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) /* XMM and YMM state */
        return VELARIA_LEVEL_SCALAR;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return VELARIA_LEVEL_SCALAR;
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (!(avx2 && fma))
        return VELARIA_LEVEL_SCALAR;
    if (avx512f && (xcr0 & 0xE6) == 0xE6) /* + opmask, ZMM_Hi256, Hi16_ZMM state */
        return VELARIA_LEVEL_AVX512;
    return VELARIA_LEVEL_AVX2;
}
#elif defined(VELARIA_ARM64)
int velaria_cpu_level(void) { return VELARIA_LEVEL_NEON; }
#else
int velaria_cpu_level(void) { return VELARIA_LEVEL_SCALAR; }
#endif

int velaria_compiled_levels(void)
{
    int mask = 1 << VELARIA_LEVEL_SCALAR;
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    mask |= (1 << VELARIA_LEVEL_AVX2) | (1 << VELARIA_LEVEL_AVX512);
#endif
#if defined(VELARIA_ARM64)
    mask |= 1 << VELARIA_LEVEL_NEON;
#endif
    return mask;
}
