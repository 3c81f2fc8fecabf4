/* AVX2 + FMA + F16C kernels (x86_impl.h compiled without VNNI). */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

#define MP_SFX avx2
#define MP_VNNI 0
#include "kernels/x86_impl.h"
#include "kernels/x86_repack.h"

void mp_kernels_fill_avx2(mp_kernel_table *t)
{
    fill_common_avx2(t);
    fill_repack_avx2(t);
}
