import * as tf from '@tensorflow/tfjs';

/**
 * Forward-convolution geometry shared by the gradient kernels: tfjs's own padding arithmetic
 * (so 'same', 'valid', numbers and explicit pads match the cpu backend exactly).
 */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

type PadAttr = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];

export function convGeometry(
  kernelName: string,
  xShape: number[],
  filterShape: number[],
  attrs: {
    strides: number | [number, number];
    pad: PadAttr;
    dataFormat?: string;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  },
): ConvGeometry {
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC' && attrs.dataFormat !== 'channelsLast') {
    throw new Error(`galactic's wasm ${kernelName} supports NHWC only, got dataFormat '${attrs.dataFormat}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}
