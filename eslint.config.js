import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'proto/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
  {
    // The web UI runs in the browser.
    files: ['ui/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    // TypeScript checks a message literal field by field only where it knows the literal's type:
    // in the generators, callbacks that build one declare it, and so do fields spread in on a condition.
    files: ['src/xds/generate/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...[
          'ArrowFunctionExpression:not([returnType]) > ObjectExpression',
          'ArrowFunctionExpression:not([returnType]) > :matches(ConditionalExpression, ArrayExpression) > ObjectExpression',
          'ArrowFunctionExpression:not([returnType]) > BlockStatement > ReturnStatement > ObjectExpression',
          'ArrowFunctionExpression:not([returnType]) > BlockStatement > ReturnStatement > :matches(ConditionalExpression, ArrayExpression) > ObjectExpression',
          'FunctionDeclaration:not([returnType])',
        ].map((selector) => ({ selector, message: 'declare the return type: a literal returned from an untyped function is not checked for misspelled fields' })),
        {
          selector: 'SpreadElement > ConditionalExpression > ObjectExpression[properties.length>0]',
          message: 'add `satisfies` with the message type: fields spread in from a conditional are not checked for misspellings',
        },
      ],
    },
  },
  {
    files: ['scripts/**', 'test/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
);
