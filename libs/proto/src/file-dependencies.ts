import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type DescriptorProto, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { PackageDefinition } from '@grpc/proto-loader';

/**
 * Declares the imports that proto-loader leaves out of its file descriptors, and makes every type
 * reference fully qualified, as protoc does.
 *
 * proto-loader (protobufjs) rebuilds one descriptor per package with an empty `dependency` list
 * (grpc/grpc-node#2595). @grpc/reflection still sends the referenced files along, but a client that
 * links descriptors strictly, such as grpcurl, then cannot resolve `google.protobuf.Timestamp` and
 * the other well-known types the contract uses (grpc/grpc-node#2958). The rebuilt descriptors keep
 * protobufjs's file names (`wsmon_v1.proto`, `google_protobuf.proto`); they are consistent with each
 * other, which is all reflection needs.
 */
export function withFileDependencies(definition: PackageDefinition): PackageDefinition {
  // proto-loader gives every message and enum the same list: all files of the definition.
  const original = new Set<Buffer>();
  for (const entry of Object.values(definition)) {
    if (Array.isArray(entry.fileDescriptorProtos)) {
      for (const bytes of entry.fileDescriptorProtos) original.add(bytes);
    }
  }
  const linked = linkFiles([...original]);
  return Object.fromEntries(
    Object.entries(definition).map(([name, entry]) => [
      name,
      Array.isArray(entry.fileDescriptorProtos) ? { ...entry, fileDescriptorProtos: linked } : entry,
    ]),
  ) as PackageDefinition;
}

function linkFiles(encoded: readonly Buffer[]): Buffer[] {
  const files = encoded.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));

  /** Fully-qualified name (no leading dot) of every message and enum, to the file defining it. */
  const definedIn = new Map<string, string>();
  for (const file of files) {
    const define = (messages: readonly DescriptorProto[], scope: string) => {
      for (const message of messages) {
        const name = qualify(scope, message.name);
        definedIn.set(name, file.name);
        for (const e of message.enumType) definedIn.set(qualify(name, e.name), file.name);
        define(message.nestedType, name);
      }
    };
    define(file.messageType, file.package);
    for (const e of file.enumType) definedIn.set(qualify(file.package, e.name), file.name);
  }

  /** Resolves a reference as protobuf scoping does: innermost scope first; `.a.b` is absolute. */
  const resolve = (reference: string, scope: string): string | undefined => {
    if (reference.startsWith('.')) return definedIn.has(reference.slice(1)) ? reference.slice(1) : undefined;
    for (let s: string | undefined = scope; s !== undefined; s = parent(s)) {
      const candidate = qualify(s, reference);
      if (definedIn.has(candidate)) return candidate;
    }
    return undefined;
  };

  return files.map((file) => {
    const dependencies = new Set(file.dependency);
    const link = (reference: string, scope: string): string => {
      const target = resolve(reference, scope);
      if (target === undefined) return reference;
      const home = definedIn.get(target);
      if (home !== undefined && home !== file.name) dependencies.add(home);
      return `.${target}`;
    };
    const visit = (messages: readonly DescriptorProto[], scope: string) => {
      for (const message of messages) {
        const name = qualify(scope, message.name);
        for (const field of [...message.field, ...message.extension]) {
          if (field.typeName) field.typeName = link(field.typeName, name);
          if (field.extendee) field.extendee = link(field.extendee, name);
        }
        visit(message.nestedType, name);
      }
    };
    visit(file.messageType, file.package);
    for (const field of file.extension) {
      if (field.typeName) field.typeName = link(field.typeName, file.package);
      if (field.extendee) field.extendee = link(field.extendee, file.package);
    }
    for (const service of file.service) {
      const scope = qualify(file.package, service.name);
      for (const method of service.method) {
        method.inputType = link(method.inputType, scope);
        method.outputType = link(method.outputType, scope);
      }
    }
    file.dependency = [...dependencies].sort();
    return Buffer.from(toBinary(FileDescriptorProtoSchema, file));
  });
}

const qualify = (scope: string, name: string) => (scope ? `${scope}.${name}` : name);

/** `a.b.c` → `a.b` → `a` → `""` → undefined. */
function parent(scope: string): string | undefined {
  if (scope === '') return undefined;
  const dot = scope.lastIndexOf('.');
  return dot === -1 ? '' : scope.slice(0, dot);
}
