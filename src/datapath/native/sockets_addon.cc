// Placeholder so the addon target builds before the sockets bindings land.
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(meshaccel_sockets, Init)
