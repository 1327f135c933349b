import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const TEST_FILES = [
  '**/*.spec.ts',
  // What several specs share (fixtures, throwaway databases): test code, never imported by shipped code.
  '**/*.spec-helper.ts',
  '**/e2e/**/*.ts',
  '**/bench/**/*.ts',
  'libs/testing/**/*.ts',
  'tools/**/*.ts',
];

/**
 * Project boundaries by Nx tag. Test code (specs, e2e, benchmarks) may also use the test
 * harness; shipped code never may. The agent never imports control-plane code.
 */
function boundaries({ testCode }) {
  const harness = testCode ? ['type:testing'] : [];
  return {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: [
      { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [] },
      { sourceTag: 'type:proto', onlyDependOnLibsWithTags: [] },
      { sourceTag: 'type:runtime', onlyDependOnLibsWithTags: [] },
      { sourceTag: 'type:metrics', onlyDependOnLibsWithTags: [] },
      { sourceTag: 'type:engine', onlyDependOnLibsWithTags: ['type:contracts', ...harness] },
      { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:contracts', 'type:engine'] },
      { sourceTag: 'scope:agent', notDependOnLibsWithTags: ['scope:control-plane', 'scope:cli'] },
      { sourceTag: 'scope:cli', notDependOnLibsWithTags: ['scope:control-plane', 'scope:agent'] },
      { sourceTag: 'scope:control-plane', notDependOnLibsWithTags: ['scope:agent', 'scope:cli'] },
      {
        sourceTag: 'type:app',
        onlyDependOnLibsWithTags: [
          'type:contracts',
          'type:engine',
          'type:proto',
          'type:runtime',
          'type:metrics',
          ...harness,
        ],
      },
    ],
  };
}

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/coverage/**',
      '.nx/**',
      '.wsmon/**',
      'libs/proto/src/generated/**',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'smart'],
      '@nx/enforce-module-boundaries': ['error', boundaries({ testCode: false })],
    },
  },
  {
    files: TEST_FILES,
    rules: { '@nx/enforce-module-boundaries': ['error', boundaries({ testCode: true })] },
  },
  {
    // End-to-end specs assert on JSON that arrives over the wire: untyped by nature, checked by the assertions.
    files: ['**/e2e/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  {
    // The test harness is for specs, end-to-end tests and benchmarks only, never for shipped code.
    files: ['apps/*/src/**/*.ts', 'libs/*/src/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.spec-helper.ts', 'libs/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@wsmon/testing', message: 'libs/testing is for tests and benchmarks only.' },
            { name: '@wsmon/metrics/parser', message: 'the exposition parser is for tests only.' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.cjs', 'apps/cli/bin/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
