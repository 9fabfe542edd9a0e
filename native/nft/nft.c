// nadguard's native nft executor (src/nft/addon.ts loads it): runs nft scripts and commands
// through libnftables (the library `nft` itself is built on) inside a network namespace, on a libuv
// worker thread, so an apply costs no process start and does not block the event loop.
//
//   apply(script, netns | null, dryRun)       -> Promise<{ exitCode, stdout, stderr }>   as `nft [--check] -f FILE`
//   command(command, netns | null, outputFlags) -> Promise<{ exitCode, stdout, stderr }>  as `nft [-j -t -a] COMMAND`
//
// The worker thread enters the netns with setns(2) (a netns is per thread on Linux), opens the
// netlink socket there (nft_ctx_new), runs the script as one transaction (one parse, one netlink
// batch: all or nothing, as `nft -f`), and goes back to the netns the thread had before its first
// call. A thread that cannot go back aborts the process: a libuv worker left in a pod's netns would
// run the next apply, or any other work of the pool, in the wrong namespace. exitCode is 0 or 1 as
// nft's own; -1 when the netns could not be entered (nothing ran), with the reason on stderr.
//
// A script is handed to libnftables as a file, not a buffer: libnftables 1.0.6 (Debian bookworm)
// reports an error in a buffer without its line, under the buffer's first line, while a file gets
// `FILE:LINE:COL-COL: Error: ...` under the failing statement, which src/nft/errors.ts maps back to
// the operation. The file is a memfd(2) holding the whole script before nft reads a byte of it (so
// never a prefix), read as /proc/self/fd/N; nothing touches the disk and nothing is left behind.
// Commands (listings) go through nft_run_cmd_from_buffer, as the nft binary runs its arguments.
//
// libnftables 1.0.6 is not thread-safe: nft_ctx_new initialises shared state on its first call
// (done here once, on the main thread, when the module loads); the ids that bind a new set or chain
// to its rules within a batch come from global counters (rule.c set_id, chain_id), the ruleset
// generation a cache is checked against is a global (mnl.c nft_genid), the interface cache is one
// list, and listings print protocol and service names through getprotobynumber(3)/getservbyport(3),
// whose result lives in one static buffer of glibc. Runs therefore hold one process-wide lock
// around the library; setns, the way back and the memfd stay outside it.
//
// Except while the kernel commits: libnftables sends the whole batch with one sendmsg(2), and the
// kernel runs the transaction, commit included, inside that call. A commit that deletes set
// elements or a table waits there for an RCU grace period (8-16 ms on the bench machine, with the
// thread asleep), so a change touching 100 netns would take a second and more one commit at a
// time. libnftables' sendmsg is therefore routed (its GOT entry, patched once at load) through
// unlocked_sendmsg, which drops the lock for the syscall alone and takes it back before returning:
// by then the batch is built (the set and chain ids are in it, the cache was fetched), and the
// syscall reads only this run's own batch buffers. Where the patch cannot be made, the lock is held
// throughout: `parallelCommits` says which (src/nft/addon.ts queues its calls accordingly).
//
// And while the netlink socket closes (libmnl's close, routed the same way through
// unlocked_close): closing an nfnetlink socket makes the kernel flush nf_tables' destroy work,
// global to all netns, which waits for an RCU grace period whenever any commit anywhere deleted
// something (nft_rcv_nl_event on NETLINK_URELEASE). Measured with the lock held: 10-20 ms asleep in
// close(2) per run after element deletes, one run at a time, so that 100 netns losing an element
// took 0.5-0.6 s. The close is handed to one of CLOSERS threads of the addon's own instead, and the
// run ends without waiting for it (the transaction was committed in sendmsg; the socket, still
// open, keeps its fd number until the closer closes it); past CLOSE_BACKLOG sockets waiting, the
// run closes its own, with the lock dropped.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <nftables/libnftables.h>

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

// Whether this thread holds nft_lock inside a libnftables call (unlocked_sendmsg's and unlocked_close's precondition).
static __thread int in_nft = 0;

static ssize_t (*real_sendmsg)(int, const struct msghdr *, int) = NULL;
static int (*real_close)(int) = NULL;
static int parallel_commits = 0;

static ssize_t unlocked_sendmsg(int fd, const struct msghdr *msg, int flags) {
  if (!in_nft) return real_sendmsg(fd, msg, flags);
  pthread_mutex_unlock(&nft_lock);
  ssize_t n = real_sendmsg(fd, msg, flags);
  int saved = errno;
  pthread_mutex_lock(&nft_lock);
  errno = saved;
  return n;
}

// Sockets waiting for a closer thread (see unlocked_close), at most CLOSE_BACKLOG.
#define CLOSERS 16
#define CLOSE_BACKLOG 256
static pthread_mutex_t close_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t close_wake = PTHREAD_COND_INITIALIZER;
static int close_queue[CLOSE_BACKLOG];
static int close_count = 0;
static int closers = 0;

static void *closer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&close_lock);
  for (;;) {
    while (close_count == 0) pthread_cond_wait(&close_wake, &close_lock);
    int fd = close_queue[--close_count];
    pthread_mutex_unlock(&close_lock);
    real_close(fd);
    pthread_mutex_lock(&close_lock);
  }
  return NULL;
}

// libmnl's close of a run's netlink socket: handed to a closer thread, so that the run ends (and its
// libuv thread is free) without waiting for the kernel's flush; closed here, without the lock, when
// the closers are behind by CLOSE_BACKLOG sockets or could not be started.
static int unlocked_close(int fd) {
  if (!in_nft) return real_close(fd);
  pthread_mutex_lock(&close_lock);
  if (closers > 0 && close_count < CLOSE_BACKLOG) {
    close_queue[close_count++] = fd;
    pthread_cond_signal(&close_wake);
    pthread_mutex_unlock(&close_lock);
    return 0;
  }
  pthread_mutex_unlock(&close_lock);
  pthread_mutex_unlock(&nft_lock);
  int rc = real_close(fd);
  int saved = errno;
  pthread_mutex_lock(&nft_lock);
  errno = saved;
  return rc;
}

// Starts the closer threads (detached: they live as long as the process).
static void start_closers(void) {
  for (int i = 0; i < CLOSERS; i++) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024); // a close(2) and a queue: not the default 8 MiB
    if (pthread_create(&thread, &attr, closer, NULL) == 0) closers++;
    pthread_attr_destroy(&attr);
  }
}

// A dynamic-section address: relocated in place by glibc on most architectures, not on some.
static uintptr_t dyn_addr(const struct link_map *lm, ElfW(Addr) value) {
  return value >= lm->l_addr ? (uintptr_t)value : lm->l_addr + (uintptr_t)value;
}

// Points `library`'s PLT slot for `symbol` at `replacement`, after storing the real function in
// `*real` (which the replacement calls); 1 when done, 0 when it cannot be (the library is not
// loaded, has no such slot, or the slot cannot be written).
static int route(const char *library, const char *symbol, void *replacement, void **real) {
  void *lib = dlopen(library, RTLD_NOW | RTLD_NOLOAD);
  struct link_map *lm = NULL;
  if (lib == NULL || dlinfo(lib, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL) return 0;
  const ElfW(Rela) *rela = NULL;
  size_t size = 0;
  const ElfW(Sym) *symtab = NULL;
  const char *strtab = NULL;
  for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
    if (d->d_tag == DT_JMPREL) rela = (const ElfW(Rela) *)dyn_addr(lm, d->d_un.d_ptr);
    else if (d->d_tag == DT_PLTRELSZ) size = d->d_un.d_val;
    else if (d->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)dyn_addr(lm, d->d_un.d_ptr);
    else if (d->d_tag == DT_STRTAB) strtab = (const char *)dyn_addr(lm, d->d_un.d_ptr);
    else if (d->d_tag == DT_PLTREL && d->d_un.d_val != DT_RELA) return 0;
  }
  if (rela == NULL || symtab == NULL || strtab == NULL) return 0;
  for (size_t i = 0; i < size / sizeof(ElfW(Rela)); i++) {
#if __WORDSIZE == 64
    size_t sym = ELF64_R_SYM(rela[i].r_info);
#else
    size_t sym = ELF32_R_SYM(rela[i].r_info);
#endif
    if (strcmp(strtab + symtab[sym].st_name, symbol) != 0) continue;
    void **slot = (void **)(lm->l_addr + rela[i].r_offset);
    long page = sysconf(_SC_PAGESIZE);
    void *start = (void *)((uintptr_t)slot & ~((uintptr_t)page - 1));
    // Full RELRO: the slot is read-only after loading; made writable for the one store.
    if (mprotect(start, (size_t)page, PROT_READ | PROT_WRITE) != 0) return 0;
    *real = dlsym(RTLD_DEFAULT, symbol);
    if (*real != NULL) *slot = replacement;
    mprotect(start, (size_t)page, PROT_READ);
    return *real != NULL;
  }
  return 0;
}

// The netns this worker thread had before its first run (a libuv thread lives as long as the process).
static __thread int home_netns = -1;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int as_file; // 1: apply (the text is a script file), 0: command (a buffer)
  char *script;
  char *netns; // NULL: the thread's own netns
  unsigned int flags;
  int dry_run;
  int exit_code;
  char *out;
  char *err;
} run_t;

static char *copy(const char *text) {
  char *c = strdup(text != NULL ? text : "");
  if (c == NULL) abort();
  return c;
}

static char *format_error(const char *what, const char *path, int errnum) {
  char *message = NULL;
  if (asprintf(&message, "cannot %s network namespace %s: %s\n", what, path, strerror(errnum)) < 0) abort();
  return message;
}

static void go_home(void) {
  if (setns(home_netns, CLONE_NEWNET) == 0) return;
  fprintf(stderr, "nadguard: FATAL: a libuv worker thread cannot return to its own network namespace after an nft run (%s); aborting rather than leave it in a pod's\n", strerror(errno));
  abort();
}

// Enters r->netns; on failure fills r->err and returns 0.
static int enter(run_t *r) {
  if (home_netns < 0) {
    home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_netns < 0) {
      r->err = format_error("remember the worker thread's", "/proc/thread-self/ns/net", errno);
      return 0;
    }
  }
  int fd = open(r->netns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r->err = format_error("open", r->netns, errno);
    return 0;
  }
  int rc = setns(fd, CLONE_NEWNET);
  int saved = errno;
  close(fd);
  if (rc != 0) {
    r->err = format_error("enter", r->netns, saved);
    return 0;
  }
  return 1;
}

// The script as a file of its own (see the top of this file); -1 with r->err set on failure.
static int script_file(run_t *r) {
  int fd = memfd_create("nadguard-nft", MFD_CLOEXEC);
  if (fd < 0) {
    r->err = format_error("write the script for", "(memfd)", errno);
    return -1;
  }
  size_t left = strlen(r->script);
  const char *at = r->script;
  while (left > 0) {
    ssize_t n = write(fd, at, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r->err = format_error("write the script for", "(memfd)", errno);
      close(fd);
      return -1;
    }
    at += n;
    left -= (size_t)n;
  }
  return fd;
}

static void run_nft(run_t *r) {
  int fd = -1;
  char path[64];
  if (r->as_file) {
    if ((fd = script_file(r)) < 0) return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  pthread_mutex_lock(&nft_lock);
  in_nft = 1;
  // Made after setns: the context's netlink socket belongs to the netns it is opened in.
  struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) {
    in_nft = 0;
    pthread_mutex_unlock(&nft_lock);
    if (fd >= 0) close(fd);
    r->err = copy("nft_ctx_new failed\n");
    return;
  }
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  if (r->flags != 0) nft_ctx_output_set_flags(ctx, r->flags);
  if (r->dry_run) nft_ctx_set_dry_run(ctx, true);
  int rc = r->as_file ? nft_run_cmd_from_filename(ctx, path) : nft_run_cmd_from_buffer(ctx, r->script);
  r->out = copy(nft_ctx_get_output_buffer(ctx));
  r->err = copy(nft_ctx_get_error_buffer(ctx));
  nft_ctx_free(ctx);
  in_nft = 0;
  pthread_mutex_unlock(&nft_lock);
  if (fd >= 0) close(fd);
  r->exit_code = rc == 0 ? 0 : 1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  run_t *r = data;
  r->exit_code = -1;
  if (r->netns != NULL && !enter(r)) return;
  run_nft(r);
  if (r->netns != NULL) go_home();
}

static napi_value string_value(napi_env env, const char *text) {
  napi_value v;
  napi_create_string_utf8(env, text != NULL ? text : "", NAPI_AUTO_LENGTH, &v);
  return v;
}

static void complete(napi_env env, napi_status status, void *data) {
  run_t *r = data;
  napi_value result, code;
  napi_create_object(env, &result);
  napi_create_int32(env, status == napi_ok ? r->exit_code : -1, &code);
  napi_set_named_property(env, result, "exitCode", code);
  napi_set_named_property(env, result, "stdout", string_value(env, r->out));
  napi_set_named_property(env, result, "stderr", string_value(env, status == napi_ok ? r->err : "the nft run was cancelled\n"));
  napi_resolve_deferred(env, r->deferred, result);
  napi_delete_async_work(env, r->work);
  free(r->script);
  free(r->netns);
  free(r->out);
  free(r->err);
  free(r);
}

static char *utf8_arg(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *text = malloc(length + 1);
  if (text == NULL) abort();
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  // A NUL inside would end the script early for libnftables: a prefix applied is not all or nothing.
  if (strlen(text) != length) {
    free(text);
    return NULL;
  }
  return text;
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// Queues one run; `text` and `netns` are owned by the run from here on.
static napi_value queue(napi_env env, int as_file, char *text, char *netns, uint32_t flags, bool dry_run) {
  run_t *r = calloc(1, sizeof(run_t));
  if (r == NULL) abort();
  r->as_file = as_file;
  r->script = text;
  r->netns = netns;
  r->flags = flags;
  r->dry_run = dry_run;
  napi_value promise, name;
  napi_create_promise(env, &r->deferred, &promise);
  napi_create_string_utf8(env, "nadguard:nft", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, r, &r->work);
  napi_queue_async_work(env, r->work);
  return promise;
}

// The text and netns arguments (argv[0], argv[1]) of apply and command; 0 after throwing.
static int text_and_netns(napi_env env, napi_value *argv, char **text, char **netns) {
  napi_valuetype netns_type;
  napi_typeof(env, argv[1], &netns_type);
  *netns = NULL;
  if ((*text = utf8_arg(env, argv[0])) == NULL) {
    throw_type_error(env, "the script must be a string without NUL characters");
    return 0;
  }
  if (netns_type != napi_null && netns_type != napi_undefined && (*netns = utf8_arg(env, argv[1])) == NULL) {
    free(*text);
    throw_type_error(env, "netns must be a path without NUL characters, or null");
    return 0;
  }
  return 1;
}

// apply(script, netns, dryRun) and command(command, netns, outputFlags): one entry, told apart by
// the function's data (non-NULL for apply).
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *data;
  napi_get_cb_info(env, info, &argc, argv, NULL, &data);
  int as_file = data != NULL;
  bool dry_run = false;
  uint32_t flags = 0;
  char *text, *netns;
  if (argc != 3) return throw_type_error(env, as_file ? "apply(script, netns, dryRun) takes 3 arguments" : "command(command, netns, outputFlags) takes 3 arguments");
  napi_status status = as_file ? napi_get_value_bool(env, argv[2], &dry_run) : napi_get_value_uint32(env, argv[2], &flags);
  if (status != napi_ok) return throw_type_error(env, as_file ? "dryRun must be a boolean" : "outputFlags must be a number");
  if (!text_and_netns(env, argv, &text, &netns)) return NULL;
  return queue(env, as_file, text, netns, flags, dry_run);
}

static napi_value init(napi_env env, napi_value exports) {
  // nft_ctx_new's one-time global set-up (gmp, xtables) is unsynchronised: run it here, before any
  // worker thread can. A flag other than NFT_CTX_DEFAULT opens no netlink socket.
  pthread_mutex_lock(&nft_lock);
  struct nft_ctx *ctx = nft_ctx_new(1);
  if (ctx != NULL) nft_ctx_free(ctx);
  parallel_commits = route("libnftables.so.1", "sendmsg", (void *)unlocked_sendmsg, (void **)&real_sendmsg);
  if (parallel_commits && route("libmnl.so.0", "close", (void *)unlocked_close, (void **)&real_close)) start_closers();
  pthread_mutex_unlock(&nft_lock);
  napi_value fn;
  static int apply_marker;
  napi_create_function(env, "apply", NAPI_AUTO_LENGTH, start, &apply_marker, &fn);
  napi_set_named_property(env, exports, "apply", fn);
  napi_create_function(env, "command", NAPI_AUTO_LENGTH, start, NULL, &fn);
  napi_set_named_property(env, exports, "command", fn);
  napi_value parallel;
  napi_get_boolean(env, parallel_commits, &parallel);
  napi_set_named_property(env, exports, "parallelCommits", parallel);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
