# The libnftables helper of src/nft/exec.ts (HelperNftExecutor): one process per helper slot,
# python3 + ctypes over libnftables.so.1. Reads one JSON request a line on stdin ({id, file | cmd,
# check, flags, netns}), enters the netns with setns(2), runs the script through libnftables (the
# same parser and single batch as `nft -f FILE`), answers one JSON line {id, exitCode, stdout,
# stderr} and goes back to its own netns. The build copies this file next to exec.js in dist/.
import ctypes, json, os, sys
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
nft = ctypes.CDLL("libnftables.so.1")
nft.nft_ctx_new.restype = ctypes.c_void_p
nft.nft_ctx_new.argtypes = [ctypes.c_uint32]
for name in ("nft_ctx_free", "nft_ctx_buffer_output", "nft_ctx_buffer_error"):
    getattr(nft, name).argtypes = [ctypes.c_void_p]
for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
    getattr(nft, name).restype = ctypes.c_char_p
    getattr(nft, name).argtypes = [ctypes.c_void_p]
nft.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
nft.nft_run_cmd_from_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
nft.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
nft.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
home = os.open("/proc/self/ns/net", os.O_RDONLY)
def reply(res):
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
reply({"ready": True})
for line in sys.stdin:
    req = json.loads(line)
    res = {"id": req["id"], "exitCode": -1, "stdout": "", "stderr": ""}
    entered = False
    try:
        if req.get("netns") is not None:
            fd = os.open(req["netns"], os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
                entered = True
            finally:
                os.close(fd)
        ctx = nft.nft_ctx_new(0)
        if not ctx:
            raise OSError(0, "nft_ctx_new failed")
        try:
            nft.nft_ctx_buffer_output(ctx)
            nft.nft_ctx_buffer_error(ctx)
            if req.get("check"):
                nft.nft_ctx_set_dry_run(ctx, True)
            if req.get("flags"):
                nft.nft_ctx_output_set_flags(ctx, req["flags"])
            if req.get("cmd") is not None:
                rc = nft.nft_run_cmd_from_buffer(ctx, req["cmd"].encode())
            else:
                rc = nft.nft_run_cmd_from_filename(ctx, req["file"].encode())
            res["exitCode"] = 0 if rc == 0 else 1
            res["stdout"] = (nft.nft_ctx_get_output_buffer(ctx) or b"").decode("utf-8", "replace")
            res["stderr"] = (nft.nft_ctx_get_error_buffer(ctx) or b"").decode("utf-8", "replace")
        finally:
            nft.nft_ctx_free(ctx)
    except OSError as e:
        res["stderr"] = "nsenter: cannot enter %s: %s\n" % (req.get("netns"), e.strerror)
    finally:
        if entered and libc.setns(home, CLONE_NEWNET) != 0:
            reply(res)
            sys.exit(1)
    reply(res)
