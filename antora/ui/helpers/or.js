'use strict'

// {{or a b}}: the first truthy argument (Handlebars passes its options object last).
module.exports = (...args) => args.slice(0, -1).find((value) => value) || ''
