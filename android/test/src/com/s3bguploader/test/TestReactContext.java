package com.s3bguploader.test;

import android.content.Context;
import com.facebook.react.bridge.Callback;
import com.facebook.react.bridge.CatalystInstance;
import com.facebook.react.bridge.JavaScriptContextHolder;
import com.facebook.react.bridge.JavaScriptModule;
import com.facebook.react.bridge.NativeModule;
import com.facebook.react.bridge.ReactApplicationContext;
import com.facebook.react.bridge.RuntimeExecutor;
import com.facebook.react.bridge.UIManager;
import com.facebook.react.turbomodule.core.interfaces.CallInvokerHolder;
import java.util.Collection;
import java.util.Collections;

/** A React context with no JavaScript instance: enough for a TurboModule under test. */
public class TestReactContext extends ReactApplicationContext {
  public TestReactContext(Context base) {
    super(base);
  }

  @Override public <T extends JavaScriptModule> T getJSModule(Class<T> c) { return null; }
  @Override public <T extends NativeModule> boolean hasNativeModule(Class<T> c) { return false; }
  @Override public Collection<NativeModule> getNativeModules() { return Collections.emptyList(); }
  @Override public <T extends NativeModule> T getNativeModule(Class<T> c) { return null; }
  @Override public NativeModule getNativeModule(String name) { return null; }
  @Override public CatalystInstance getCatalystInstance() { return null; }
  @Override public boolean hasActiveCatalystInstance() { return false; }
  @Override public boolean hasActiveReactInstance() { return false; }
  @Override public boolean hasCatalystInstance() { return false; }
  @Override public boolean hasReactInstance() { return false; }
  @Override public RuntimeExecutor getRuntimeExecutor() { return null; }
  @Override public void destroy() {}
  @Override public void handleException(Exception e) { throw new RuntimeException(e); }
  @Override public boolean isBridgeless() { return true; }
  @Override public JavaScriptContextHolder getJavaScriptContextHolder() { return null; }
  @Override public CallInvokerHolder getJSCallInvokerHolder() { return null; }
  @Override public UIManager getFabricUIManager() { return null; }
  @Override public String getSourceURL() { return null; }
  @Override public void registerSegment(int id, String path, Callback callback) {}
}
