// meshaccel's lint: typescript-eslint's recommended rules where the code already meets them,
// plus the rules the developers' guide asks for. `make lint` runs it; `make test` depends on it.
// Import cycles between folders are checked by test/layout/import-cycles.test.ts (the whole
// graph at folder level, which no per-file rule sees).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/build/**', 'bpf/**'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // Unused names are tsc's job (noUnusedLocals/noUnusedParameters).
      '@typescript-eslint/no-unused-vars': 'off',
      // Native addons and internals of peers (grpc-js-xds's RBAC engine) are loaded with
      // require() on purpose; a disable comment at each would be noise.
      '@typescript-eslint/no-require-imports': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // "No any across module boundaries": src must not use it at all.
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
