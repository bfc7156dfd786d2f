#include <stdlib.h> /* defines __GLIBC__ on glibc */
#include "malloc_tuning.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int chat_pin_mmap_threshold(int bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}
