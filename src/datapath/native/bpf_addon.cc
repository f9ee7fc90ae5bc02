// Placeholder so the addon target builds before the bpf bindings land.
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(meshaccel_bpf, Init)
