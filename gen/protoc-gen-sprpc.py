#!/usr/bin/python3
"""protoc-gen-sprpc: turns every proto `service` into client stubs (C, Python,
TypeScript) and a server dispatch table for sandproc's RPC runtime
(gen/runtime/sp_rpc.h).

With lang=c (the default), for each proto file it writes, beside nanopb's
`<name>.pb.h`:
  `<name>.rpc.h/.c`, shared by clients and the server:
    - message and enum descriptions (field names, for JSON and tools);
    - per service: method ids, a const table of
      {id, full name, request, response, flags}, and an sp_service;
    - one typed client stub per method, calling sp_client_call;
  `<name>.srv.h/.c`, for the server only:
    - one handler prototype per method and a table of handlers indexed by
      method id. The table names every handler, so a server that misses or
      misspells one fails to link instead of answering UNIMPLEMENTED.

With lang=python, `<name>_sprpc.py` beside `protoc --python_out`'s
`<name>_pb2.py`: per service a `<Service>Stub(channel)` class, gRPC's shape,
one method per RPC calling channel.call (client/python/sandproc).

With lang=ts, `<name>_sprpc.ts` beside protoc-gen-es's `<name>_pb.ts`: per
service a `<Service>Client(transport)` class, Connect-ES's shape, one
lowerCamelCase method per RPC returning a promise (client/ts/src).

Kept in three parts, as nanopb's generator is: read the request, build a
model, emit text (one emitter per language). Options (--sprpc_opt=k=v,k=v):
  lang            c, python or ts             (default "c")
  stub_prefix     prefix of C client stubs    (default "sp_")
  handler_prefix  prefix of C server handlers (default "rpc_")
  ts_runtime      module the TS stubs import Transport from, relative to the
                  output root                 (default "../transport.js")
"""

import re
import sys

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

FD = descriptor_pb2.FieldDescriptorProto
METHOD_OPTS = descriptor_pb2.MethodOptions

IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

# (sandproc.v1.role), proto/sandproc/v1/options.proto: the least role that may call a method.
ROLE_OPTION = 50731
ROLES = {1: "SP_ROLE_VIEWER", 2: "SP_ROLE_DEVELOPER", 3: "SP_ROLE_ADMIN"}
LANGS = ("c", "python", "ts")


class GenError(Exception):
    """A problem in the input that must stop generation."""


# --- model ----------------------------------------------------------------


def snake(name):
    """CamelCase -> snake_case: SendInput -> send_input, GetConfig -> get_config."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def read_varint(buf, i):
    value, shift = 0, 0
    while True:
        if i >= len(buf):
            raise GenError("truncated method options")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def varint_option(options, number):
    """The varint option `number` of an options message, or None. The plugin
    does not link the extension's Python module, so it reads the wire form,
    where protobuf keeps unknown extensions."""
    buf, i, found = options.SerializeToString(), 0, None
    while i < len(buf):
        key, i = read_varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
            if key >> 3 == number:
                found = value
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = read_varint(buf, i)
            i += n
        elif wire == 5:
            i += 4
        else:
            raise GenError("method options: wire type %d" % wire)
    return found


def c_name(full_name):
    """.sandproc.v1.Process -> sandproc_v1_Process (nanopb's naming)."""
    return full_name.lstrip(".").replace(".", "_")


class Enum:
    def __init__(self, full_name, desc):
        self.full_name = full_name
        self.c_name = c_name(full_name)
        prefix = snake(desc.name).upper() + "_"
        self.values = []
        for v in desc.value:
            short = v.name[len(prefix):] if v.name.startswith(prefix) else v.name
            self.values.append((v.number, v.name, short.lower()))


class Field:
    def __init__(self, desc):
        self.tag = desc.number
        self.name = desc.name
        self.type = desc.type
        self.type_name = desc.type_name  # ".pkg.Msg" for messages and enums


class Message:
    def __init__(self, full_name, desc, package, fname):
        self.full_name = full_name
        # Within its package: "Stats.Inner" (Python's path, TS's Stats_Inner).
        self.local_name = full_name.lstrip(".")[len(package) + 1 if package else 0:]
        self.ts_name = self.local_name.replace(".", "_")  # protoc-gen-es's: Stats_Inner
        self.file = fname
        self.c_name = c_name(full_name)
        self.fields = sorted((Field(f) for f in desc.field), key=lambda f: f.tag)
        self.is_map_entry = desc.options.map_entry


class Method:
    def __init__(self, service, desc, types):
        if not IDENT.match(desc.name):
            raise GenError("method name %r is not a plain identifier" % desc.name)
        if desc.client_streaming or desc.server_streaming:
            raise GenError("%s.%s: streaming methods are not supported"
                           % (service.name, desc.name))
        self.name = desc.name
        self.snake = snake(desc.name)
        self.full_name = "%s/%s" % (service.full_name, desc.name)
        for t in (desc.input_type, desc.output_type):
            if t not in types or not isinstance(types[t][0], Message):
                raise GenError("%s: unknown message type %s" % (self.full_name, t))
        self.request = types[desc.input_type][0]
        self.response = types[desc.output_type][0]
        level = desc.options.idempotency_level
        self.flags = []
        if level == METHOD_OPTS.NO_SIDE_EFFECTS:
            self.flags.append("SP_METHOD_NO_SIDE_EFFECTS")
        if level in (METHOD_OPTS.NO_SIDE_EFFECTS, METHOD_OPTS.IDEMPOTENT):
            self.flags.append("SP_METHOD_IDEMPOTENT")
        # A method that names no role needs an admin key: forgetting is safe.
        role = varint_option(desc.options, ROLE_OPTION)
        if role is not None and role not in ROLES:
            raise GenError("%s: unknown (sandproc.v1.role) %d" % (self.full_name, role))
        self.role = ROLES.get(role, "SP_ROLE_ADMIN")
        self.idempotent = "SP_METHOD_IDEMPOTENT" in self.flags

    @property
    def summary(self):
        """For the Python and TS stubs' comments: "SayRequest -> SayReply (role: admin, idempotent)"."""
        return "%s -> %s (role: %s%s)" % (self.request.local_name, self.response.local_name,
                                          self.role[len("SP_ROLE_"):].lower(),
                                          ", idempotent" if self.idempotent else "")


class Service:
    def __init__(self, package, desc, types):
        if not IDENT.match(desc.name):
            raise GenError("service name %r is not a plain identifier" % desc.name)
        self.name = desc.name
        self.snake = snake(desc.name)
        self.full_name = "%s.%s" % (package, desc.name) if package else desc.name
        self.methods = [Method(self, m, types) for m in desc.method]
        seen = {}
        for m in self.methods:
            if m.snake in seen:
                raise GenError("%s: methods %s and %s both become %s"
                               % (self.full_name, seen[m.snake], m.name, m.snake))
            seen[m.snake] = m.name


class File:
    def __init__(self, desc, types):
        self.name = desc.name
        self.base = desc.name[:-len(".proto")] if desc.name.endswith(".proto") else desc.name
        self.deps = [d[:-len(".proto")] for d in desc.dependency
                     if not d.startswith("google/protobuf/")]
        self.messages = [t for t, f in types.values() if f == desc.name and isinstance(t, Message)
                         and not t.is_map_entry]
        self.enums = [t for t, f in types.values() if f == desc.name and isinstance(t, Enum)]
        self.services = [Service(desc.package, s, types) for s in desc.service]


def collect_types(files):
    """Every message and enum of every file: {".pkg.Name": (type, file name)}."""
    types = {}

    def walk(f, prefix, messages, enums):
        for e in enums:
            full = "%s.%s" % (prefix, e.name)
            types[full] = (Enum(full, e), f.name)
        for m in messages:
            full = "%s.%s" % (prefix, m.name)
            types[full] = (Message(full, m, f.package, f.name), f.name)
            walk(f, full, m.nested_type, m.enum_type)

    for f in files:
        prefix = "." + f.package if f.package else ""
        walk(f, prefix, f.message_type, f.enum_type)
    return types


def build_model(request):
    types = collect_types(request.proto_file)
    by_name = {f.name: f for f in request.proto_file}
    return [File(by_name[n], types) for n in request.file_to_generate], types


# --- emit -----------------------------------------------------------------


BANNER = ("/* Generated by protoc-gen-sprpc from %s. DO NOT EDIT. */\n")


def guard(base, kind="RPC"):
    return re.sub(r"[^A-Za-z0-9]", "_", base).upper() + "_" + kind + "_H"


def stub_sig(opts, svc, m):
    return ("int %s%s_%s(sp_client *c, const %s *req, %s *rep, int timeout_ms)"
            % (opts["stub_prefix"], svc.snake, m.snake, m.request.c_name, m.response.c_name))


def handler_sig(opts, svc, m):
    return ("int %s%s_%s(sp_call *call, const %s *req, %s *rep)"
            % (opts["handler_prefix"], svc.snake, m.snake, m.request.c_name, m.response.c_name))


def method_enum(opts, svc, m=None):
    base = "%s%s" % (opts["stub_prefix"], svc.snake)
    return (base + "_" + (m.snake if m else "method_count")).upper()


def emit_header(f, opts):
    out = [BANNER % f.name]
    g = guard(f.base)
    out.append("#ifndef %s\n#define %s\n\n" % (g, g))
    out.append('#include "sp_client.h"\n#include "sp_rpc.h"\n#include "%s.pb.h"\n' % f.base)
    for d in f.deps:
        out.append('#include "%s.rpc.h"\n' % d)
    out.append("\n")
    if f.messages or f.enums:
        out.append("/* Names of messages and enums, for JSON and tools. */\n")
        for e in f.enums:
            out.append("extern const sp_enum_info %s_info;\n" % e.c_name)
        for msg in f.messages:
            out.append("extern const sp_msg_info %s_info;\n" % msg.c_name)
        out.append("\n")
    for svc in f.services:
        out.append("/* service %s */\n\n" % svc.full_name)
        out.append("enum {\n")
        for i, m in enumerate(svc.methods):
            out.append("\t%s = %d,\n" % (method_enum(opts, svc, m), i))
        out.append("\t%s = %d\n};\n\n" % (method_enum(opts, svc), len(svc.methods)))
        out.append("extern const sp_method %s%s_methods[%s];\n"
                   % (opts["stub_prefix"], svc.snake, method_enum(opts, svc)))
        out.append("extern const sp_service %s%s_service;\n\n" % (opts["stub_prefix"], svc.snake))
        out.append("/* Client stubs: see sp_client_call for timeout_ms and errors. */\n")
        for m in svc.methods:
            out.append("%s;\n" % stub_sig(opts, svc, m))
        out.append("\n")
    out.append("#endif\n")
    return "".join(out)


def emit_server_header(f, opts):
    out = [BANNER % f.name]
    g = guard(f.base, "SRV")
    out.append("#ifndef %s\n#define %s\n\n" % (g, g))
    out.append('#include "sp_server.h"\n#include "%s.rpc.h"\n\n' % f.base)
    for svc in f.services:
        out.append("/* service %s: handlers return an sp_status. */\n" % svc.full_name)
        for m in svc.methods:
            out.append("%s;\n" % handler_sig(opts, svc, m))
        out.append("\nextern const sp_server_service %s%s_server;\n\n"
                   % (opts["stub_prefix"], svc.snake))
    out.append("#endif\n")
    return "".join(out)


def emit_server_source(f, opts):
    out = [BANNER % f.name]
    out.append('#include "%s.srv.h"\n' % f.base)
    if f.services:
        out.append("\n")
    for svc in f.services:
        sp, hp = opts["stub_prefix"], opts["handler_prefix"]
        for m in svc.methods:
            out.append("static int\n%s%s_%s_thunk(sp_call *call, const void *req, void *rep)\n{\n"
                       % (sp, svc.snake, m.snake))
            out.append("\treturn (%s%s_%s(call, req, rep));\n}\n\n" % (hp, svc.snake, m.snake))
        out.append("static const sp_handler %s%s_handlers[%s] = {\n"
                   % (sp, svc.snake, method_enum(opts, svc)))
        for m in svc.methods:
            out.append("\t[%s] = %s%s_%s_thunk,\n" % (method_enum(opts, svc, m), sp, svc.snake, m.snake))
        out.append("};\n\n")
        out.append("const sp_server_service %s%s_server = {&%s%s_service, %s%s_handlers};\n\n"
                   % (sp, svc.snake, sp, svc.snake, sp, svc.snake))
    return "".join(out).rstrip("\n") + "\n"


def emit_field_info(f, msg, types):
    out = []
    arr = "%s_info_fields" % msg.c_name
    if msg.fields:
        out.append("static const sp_field_info %s[] = {\n" % arr)
        for fl in msg.fields:
            sub, enm = "NULL", "NULL"
            if fl.type == FD.TYPE_MESSAGE:
                t = types[fl.type_name][0]
                if isinstance(t, Message) and not t.is_map_entry:
                    sub = "&%s_info" % t.c_name
            elif fl.type == FD.TYPE_ENUM:
                enm = "&%s_info" % types[fl.type_name][0].c_name
            out.append('\t{%d, "%s", %s, %s},\n' % (fl.tag, fl.name, sub, enm))
        out.append("};\n")
    out.append('const sp_msg_info %s_info = {"%s", %s_fields, sizeof(%s), %d, %s};\n\n'
               % (msg.c_name, msg.full_name.lstrip("."), msg.c_name, msg.c_name,
                  len(msg.fields), arr if msg.fields else "NULL"))
    return "".join(out)


def emit_source(f, opts, types):
    out = [BANNER % f.name]
    out.append('#include "%s.rpc.h"\n\n' % f.base)
    for e in f.enums:
        out.append("static const sp_enum_value %s_info_values[] = {\n" % e.c_name)
        for num, name, short in e.values:
            out.append('\t{%d, "%s", "%s"},\n' % (num, name, short))
        out.append("};\n")
        out.append('const sp_enum_info %s_info = {"%s", %d, %s_info_values};\n\n'
                   % (e.c_name, e.full_name.lstrip("."), len(e.values), e.c_name))
    for msg in f.messages:
        out.append(emit_field_info(f, msg, types))
    for svc in f.services:
        sp = opts["stub_prefix"]
        out.append("const sp_method %s%s_methods[%s] = {\n"
                   % (sp, svc.snake, method_enum(opts, svc)))
        for m in svc.methods:
            out.append('\t{%s, "%s", &%s_info, &%s_info, %s, %s},\n'
                       % (method_enum(opts, svc, m), m.full_name, m.request.c_name,
                          m.response.c_name, " | ".join(m.flags) if m.flags else "0", m.role))
        out.append("};\n\n")
        out.append('const sp_service %s%s_service = {"%s", %s%s_methods, %s};\n\n'
                   % (sp, svc.snake, svc.full_name, sp, svc.snake, method_enum(opts, svc)))
        for m in svc.methods:
            out.append("%s\n{\n" % stub_sig(opts, svc, m).replace("int ", "int\n", 1))
            out.append("\treturn (sp_client_call(c, &%s%s_methods[%s], req, rep, timeout_ms));\n}\n\n"
                       % (sp, svc.snake, method_enum(opts, svc, m)))
    return "".join(out).rstrip("\n") + "\n"


# --- emit: Python -----------------------------------------------------------


def py_module(proto_name):
    """demo/v1/echo.proto -> ("demo.v1", "echo_pb2", "demo_dot_v1_dot_echo__pb2"), as protoc names it."""
    base = proto_name[:-len(".proto")] if proto_name.endswith(".proto") else proto_name
    package, _, mod = base.replace("/", ".").rpartition(".")
    alias = base.replace("_", "__").replace("/", "_dot_") + "__pb2"
    return package, mod + "_pb2", alias


# Keywords of the Python stubs' methods: a request field with one of these names would be shadowed.
PY_STUB_KEYWORDS = ("request", "timeout", "self")


def emit_python(f):
    for svc in f.services:
        for m in svc.methods:
            for fl in m.request.fields:
                if fl.name in PY_STUB_KEYWORDS:
                    raise GenError("%s: request field %r clashes with the Python stub's own parameter"
                                   % (m.full_name, fl.name))
    out = ["# Generated by protoc-gen-sprpc from %s. DO NOT EDIT.\n" % f.name,
           '"""Client stubs for %s: call them through a sandproc.Channel."""\n\n' % f.name]
    files = sorted({m.request.file for s in f.services for m in s.methods}
                   | {m.response.file for s in f.services for m in s.methods})
    for name in files:
        out.append("from %s import %s as %s\n" % py_module(name))
    for svc in f.services:
        out.append("\n\nclass %sStub:\n" % svc.name)
        out.append('    """%s: one method per RPC. Each takes the request message (or its\n'
                   '    fields as keywords) and returns the reply message; failures raise\n'
                   '    sandproc.RpcError. timeout: seconds (default: the channel\'s)."""\n\n'
                   % svc.full_name)
        out.append("    def __init__(self, channel):\n        self._channel = channel\n")
        for m in svc.methods:
            req = "%s.%s" % (py_module(m.request.file)[2], m.request.local_name)
            rep_ = "%s.%s" % (py_module(m.response.file)[2], m.response.local_name)
            out.append("\n    def %s(self, request=None, *, timeout=None, **fields):\n" % m.name)
            out.append('        """%s."""\n' % m.summary)
            out.append('        return self._channel.call("%s", %s, %s, request, fields, timeout)\n'
                       % (m.full_name, req, rep_))
    return "".join(out)


# --- emit: TypeScript -------------------------------------------------------


def lower_camel(name):
    return name[0].lower() + name[1:]


def ts_import(from_base, to_proto):
    """The relative module (with .js, as Node's ESM wants) of to_proto's protoc-gen-es output."""
    to = to_proto[:-len(".proto")] + "_pb"
    here = from_base.split("/")[:-1]
    there = to.split("/")
    common = 0
    while common < min(len(here), len(there) - 1) and here[common] == there[common]:
        common += 1
    up = len(here) - common
    rel = "/".join(there[common:])
    return ("./" if up == 0 else "../" * up) + rel + ".js"


def emit_ts(f, opts):
    out = ["// Generated by protoc-gen-sprpc from %s. DO NOT EDIT.\n\n" % f.name]
    runtime = ts_runtime_module(f.base, opts)
    out.append('import type { MessageInitShape } from "@bufbuild/protobuf";\n')
    out.append('import type { CallOptions, Transport } from "%s";\n' % runtime)
    schemas, types_ = {}, {}
    for svc in f.services:
        for m in svc.methods:
            for msg in (m.request, m.response):
                schemas.setdefault(msg.file, set()).add(msg.ts_name + "Schema")
            types_.setdefault(m.response.file, set()).add(m.response.ts_name)
    for name in sorted(schemas):
        module = ts_import(f.base, name)
        out.append('import { %s } from "%s";\n' % (", ".join(sorted(schemas[name])), module))
        if name in types_:
            out.append('import type { %s } from "%s";\n' % (", ".join(sorted(types_[name])), module))
    for svc in f.services:
        out.append("\n/**\n * %s: one method per RPC, taking the request's fields and resolving to\n"
                   " * the reply; failures reject with SandprocError.\n */\n" % svc.full_name)
        out.append("export class %sClient {\n" % svc.name)
        out.append("  constructor(private readonly transport: Transport) {}\n")
        for m in svc.methods:
            req, rep_ = m.request.ts_name, m.response.ts_name
            out.append("\n  /** %s. */\n" % m.summary)
            out.append("  %s(request: MessageInitShape<typeof %sSchema> = {}, options?: CallOptions): Promise<%s> {\n"
                       % (lower_camel(m.name), req, rep_))
            out.append('    return this.transport.unary("%s", %sSchema, %sSchema, request, options);\n  }\n'
                       % (m.full_name, req, rep_))
        out.append("}\n")
    return "".join(out)


def ts_runtime_module(base, opts):
    """opts["ts_runtime"] (relative to the output root) as seen from the file of base."""
    depth = base.count("/")
    return ("../" * depth if depth else "./") + opts["ts_runtime"]


def emit_ts_index(directory, files, opts):
    """clients_sprpc.ts of one directory: every service's client on one transport."""
    out = ["// Generated by protoc-gen-sprpc from %s. DO NOT EDIT.\n\n" % ", ".join(f.name for f in files)]
    out.append('import type { Transport } from "%s";\n' % ts_runtime_module(files[0].base, opts))
    svcs = []
    for f in files:
        names = ["%sClient" % s.name for s in f.services]
        out.append('import { %s } from "./%s_sprpc.js";\n' % (", ".join(names), f.base.rsplit("/", 1)[-1]))
        svcs += f.services
    out.append("\n/** Every service's client, sharing one transport. */\n")
    out.append("export function createClients(transport: Transport) {\n  return {\n")
    for s in svcs:
        out.append("    %s: new %sClient(transport),\n" % (lower_camel(s.name), s.name))
    out.append("  };\n}\n")
    return "".join(out)


# --- main -----------------------------------------------------------------


def parse_options(param):
    opts = {"lang": "c", "stub_prefix": "sp_", "handler_prefix": "rpc_",
            "ts_runtime": "../transport.js"}
    for item in filter(None, param.split(",")):
        key, _, value = item.partition("=")
        if key not in opts:
            raise GenError("unknown option %r (known: %s)" % (key, ", ".join(sorted(opts))))
        if key == "lang" and value not in LANGS:
            raise GenError("lang=%r: one of %s" % (value, ", ".join(LANGS)))
        if key.endswith("_prefix") and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise GenError("option %s=%r is not a C identifier prefix" % (key, value))
        if key == "ts_runtime" and not re.match(r"^[A-Za-z0-9_./-]+$", value):
            raise GenError("option ts_runtime=%r is not a module path" % value)
        opts[key] = value
    return opts


def generate(request):
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    try:
        opts = parse_options(request.parameter)
        files, types = build_model(request)
        if opts["lang"] == "ts":
            by_dir = {}
            for f in files:
                if f.services:
                    by_dir.setdefault(f.base.rpartition("/")[0], []).append(f)
            for d, fs in sorted(by_dir.items()):
                out = response.file.add()
                out.name = (d + "/" if d else "") + "clients_sprpc.ts"
                out.content = emit_ts_index(d, fs, opts)
        for f in files:
            if opts["lang"] != "c":
                # Only files with services get stubs; their messages come from protoc's own generators.
                if f.services:
                    # Emitted before the file is added: an error must leave no nameless file behind.
                    if opts["lang"] == "python":
                        name, content = f.base + "_sprpc.py", emit_python(f)
                    else:
                        name, content = f.base + "_sprpc.ts", emit_ts(f, opts)
                    out = response.file.add()
                    out.name, out.content = name, content
                continue
            h = response.file.add()
            h.name = f.base + ".rpc.h"
            h.content = emit_header(f, opts)
            c = response.file.add()
            c.name = f.base + ".rpc.c"
            c.content = emit_source(f, opts, types)
            # Written for every file (empty without services), so builds can
            # name them without knowing which files hold services.
            sh = response.file.add()
            sh.name = f.base + ".srv.h"
            sh.content = emit_server_header(f, opts)
            sc = response.file.add()
            sc.name = f.base + ".srv.c"
            sc.content = emit_server_source(f, opts)
    except GenError as e:
        response.error = str(e)
    return response


def main():
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
