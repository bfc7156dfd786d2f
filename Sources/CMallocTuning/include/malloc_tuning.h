#ifndef CHAT_MALLOC_TUNING_H
#define CHAT_MALLOC_TUNING_H

/// Pins glibc's mmap threshold at `bytes` (it otherwise rises as large blocks are freed), so
/// large transient buffers go back to the system when freed. Returns 1 if set, 0 if not (or
/// not glibc).
int chat_pin_mmap_threshold(int bytes);

#endif
