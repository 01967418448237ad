'use strict'

/**
 * Chart slots: every notebook page shows the chart its notebook exported on the last CI run.
 *
 * The notebooks write `modules/ROOT/images/NN-<anything>.svg` (or `.png`). For each notebook number NN that
 * a page declares in antora.yml (`chart-NN` attributes), this extension looks for such an image and points the
 * attribute at it; when none exists yet it keeps the labelled placeholder and sets `chart-NN-missing`, so the
 * page can say where the chart will come from. A missing chart therefore never breaks or warns the build.
 */
const CHART_RX = /^(\d\d)-[^/]+\.(svg|png)$/
const PLACEHOLDER = 'placeholder-chart.svg'

function pickCharts (images) {
  const found = {}
  for (const image of images) {
    const match = CHART_RX.exec(image.src.relative)
    if (!match) continue
    const [, number, extension] = match
    const current = found[number]
    // Prefer SVG (sharp at any size); among equals keep the alphabetically first for a stable build.
    const better = !current ||
      (extension === 'svg' && !current.endsWith('.svg')) ||
      (extension === current.split('.').pop() && image.src.relative < current)
    if (better) found[number] = image.src.relative
  }
  return found
}

module.exports.register = function register () {
  this.on('contentClassified', ({ contentCatalog }) => {
    const logger = this.getLogger('chart-slots')
    for (const component of contentCatalog.getComponents()) {
      for (const componentVersion of component.versions) {
        const attributes = componentVersion.asciidoc && componentVersion.asciidoc.attributes
        if (!attributes) continue
        const images = contentCatalog.findBy({
          component: component.name,
          version: componentVersion.version,
          module: 'ROOT',
          family: 'image',
        })
        const charts = pickCharts(images)
        for (const name of Object.keys(attributes)) {
          const slot = /^chart-(\d\d)$/.exec(name)
          if (!slot) continue
          const chart = charts[slot[1]]
          if (chart) {
            attributes[name] = chart
            delete attributes[`${name}-missing`]
            logger.info(`notebook ${slot[1]}: using exported chart ${chart}`)
          } else {
            attributes[name] = PLACEHOLDER
            attributes[`${name}-missing`] = ''
          }
        }
      }
    }
  })
}

module.exports.pickCharts = pickCharts
