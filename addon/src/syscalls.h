// SPDX-License-Identifier: Apache-2.0
// Raw system calls for the child. The child shares the parent's memory (CLONE_VM) and its
// thread pointer, so it must not touch libc's errno or any lock: these wrappers issue the
// instruction directly and return -errno. Also the few definitions old headers lack.
#ifndef NSBOX_SYSCALLS_H_
#define NSBOX_SYSCALLS_H_

#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace sbx::sys {

inline long call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
  return x0;
#else
#error "nsbox supports x86_64 and aarch64"
#endif
}

template <typename A = long, typename B = long, typename C = long, typename D = long, typename E = long>
inline long sc(long n, A a = 0, B b = 0, C c = 0, D d = 0, E e = 0) {
  return call(n, (long)a, (long)b, (long)c, (long)d, (long)e);
}

// clone3 with a child entry point on its own stack. The child never returns into this
// frame: it runs fn(arg) on the new stack and exits with its result.
inline long clone3Run(struct clone_args* args, int (*fn)(void*), void* arg) {
#if defined(__x86_64__)
  long ret;
  register long r12 __asm__("r12") = (long)fn;
  register long r13 __asm__("r13") = (long)arg;
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov %%eax, %%edi\n\t"
      "mov %[exit_nr], %%eax\n\t"
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "a"((long)SYS_clone3), "D"((long)args), "S"((long)sizeof(*args)), "r"(r12), "r"(r13),
        [exit_nr] "i"(SYS_exit_group)
      : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = SYS_clone3;
  register long x0 __asm__("x0") = (long)args;
  register long x1 __asm__("x1") = (long)sizeof(*args);
  register long x19 __asm__("x19") = (long)fn;
  register long x20 __asm__("x20") = (long)arg;
  __asm__ volatile(
      "svc 0\n\t"
      "cbnz x0, 1f\n\t"
      "mov x29, xzr\n\t"
      "mov x30, xzr\n\t"
      "mov x0, x20\n\t"
      "blr x19\n\t"
      "mov x8, %[exit_nr]\n\t"
      "svc 0\n\t"
      "1:\n\t"
      : "+r"(x0)
      : "r"(x8), "r"(x1), "r"(x19), "r"(x20), [exit_nr] "i"(SYS_exit_group)
      : "memory", "cc");
  return x0;
#endif
}

}  // namespace sbx::sys

#endif  // NSBOX_SYSCALLS_H_
