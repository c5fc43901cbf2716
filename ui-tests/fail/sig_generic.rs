use duraflow::prelude::*;

#[activity]
pub async fn echo<T: Serialize>(x: T) -> Result<T, ActivityError> {
    Ok(x)
}

#[workflow]
pub async fn echo_workflow<'a>(_ctx: WorkflowContext, x: String) -> Result<String, WorkflowError>
where
    'a: 'static,
{
    Ok(x)
}

#[activity]
pub async fn takes_impl(x: impl Serialize) -> Result<(), ActivityError> {
    Ok(())
}

fn main() {}
