import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import jest from 'eslint-plugin-jest';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'client/dist/',
      'coverage/',
      'test-output/',
      'bench/results/',
      '.test-build/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        require: 'readonly',
        module: 'writable',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // A committed `.only` silently skips the rest of the suite in CI.
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['describe', 'it', 'test'].map((object) => ({
          object,
          property: 'only',
          message: 'Do not commit .only: it skips every other test.',
        })),
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "CallExpression[callee.type='MemberExpression'][callee.property.name='only'][callee.object.type='CallExpression'][callee.object.callee.property.name='each']",
          message: 'Do not commit .only: it skips every other test.',
        },
        {
          selector: 'CallExpression[callee.name=/^(fdescribe|fit|ftest)$/]',
          message: 'Do not commit focused tests: they skip every other test.',
        },
      ],
    },
  },
  {
    // Every test can fail: it asserts something, never only under a condition, and never
    // outside a test (an expect in afterAll fails no test and stops nothing).
    files: ['test/**/*.ts', '**/*.spec.ts'],
    plugins: { jest },
    rules: {
      'jest/expect-expect': [
        'error',
        // Helpers that assert count as assertions: name them expect* or assert* (route-shapes'
        // `exercise` predates the rule).
        { assertFunctionNames: ['expect', 'expect*', 'assert*', 'exercise'] },
      ],
      'jest/no-conditional-expect': 'error',
      'jest/no-standalone-expect': 'error',
    },
  },
  {
    // A promise nobody awaits or handles: its failure is lost (or crashes the app later).
    files: ['src/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    files: ['client/**/*.ts'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        EventSource: 'readonly',
        HTMLElement: 'readonly',
        matchMedia: 'readonly',
        getComputedStyle: 'readonly',
        requestAnimationFrame: 'readonly',
        ResizeObserver: 'readonly',
      },
    },
  },
);
