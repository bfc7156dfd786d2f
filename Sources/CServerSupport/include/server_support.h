#ifndef CHAT_SERVER_SUPPORT_H
#define CHAT_SERVER_SUPPORT_H

/// What the server needs from C that Swift does not offer.

/// Asks the CPU to bring the cache lines at `address` (and the next `lines - 1`) in, without
/// waiting and without faulting on any address: the fan-out warms the next members' objects
/// while the kernel writes to the current one. Swift has no prefetch of its own.
static inline void chat_prefetch(const void *address, int lines) {
    const char *p = (const char *)address;
    for (int i = 0; i < lines; i++) __builtin_prefetch(p + 64 * i, 0, 3);
}

/// `accept4(listener, NULL, NULL, SOCK_CLOEXEC)`: the accepted socket is close-on-exec from its
/// first instant (Glibc's Swift module does not export `accept4`). Returns -1 with `errno` set.
int chat_accept_cloexec(int listener);

#endif
