export {
  counter,
  escapeHelp,
  escapeLabelValue,
  EXPOSITION_CONTENT_TYPE,
  ExpositionError,
  formatValue,
  gauge,
  writeExposition,
  type HistogramSuffix,
  type Labels,
  type MetricFamily,
  type MetricType,
  type Sample,
} from './exposition';
export { Histogram, histogram } from './histogram';
